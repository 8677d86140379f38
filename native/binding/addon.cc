// Addon entry: context-aware (per-instance data via Napi::Addon), so it
// loads in worker threads and in several contexts at once.
#include <napi.h>

#include "../engine/factory.h"
#include "../engine/syscall.h"
#include "cow_region.h"
#include "errors.h"
#include "memory.h"
#include "mapped_region.h"
#include "ring_handle.h"
#include "seek.h"
#include "vhost_user_blk.h"
#include "write_log.h"

namespace blockring {

class BlockringAddon final : public Napi::Addon<BlockringAddon> {
 public:
  BlockringAddon(Napi::Env env, Napi::Object exports) {
    exports.Set("RingHandle", RingHandle::Define(env));
    exports.Set("maxDepth", Napi::Number::New(env, kMaxDepth));
    exports.Set("maxThreads", Napi::Number::New(env, kMaxThreads));
    exports.Set("maxDirectSubmitBatch", Napi::Number::New(env, kMaxDirectSubmitBatch));
    exports.Set("allocAligned", Napi::Function::New<AllocAligned>(env, "allocAligned"));
    exports.Set("addressAlignment", Napi::Function::New<AddressAlignment>(env, "addressAlignment"));
    exports.Set("MappedRegion", MappedRegion::Define(env));
    exports.Set("CowRegion", CowRegionHandle::Define(env));
    exports.Set("WriteLog", WriteLogHandle::Define(env));
    exports.Set("seekDataOrHole", Napi::Function::New<SeekDataOrHoleJs>(env, "seekDataOrHole"));
    exports.Set("VhostUserBlkHandle", VhostUserBlkHandle::Define(env));
    Napi::Array names = Napi::Array::New(env);
    for (const char* n : kSyscallNames) names.Set(names.Length(), n);
    exports.Set("syscallNames", names);
    exports.Set("setErrorClasses", Napi::Function::New<SetErrorClasses>(env, "setErrorClasses"));
  }

  ErrorClasses errors;
};

ErrorClasses& ErrorClassesOf(Napi::Env env) { return env.GetInstanceData<BlockringAddon>()->errors; }

}  // namespace blockring

using blockring::BlockringAddon;
NODE_API_ADDON(BlockringAddon)
