// Reads the engine part of `new RingHandle(options)` (engine name, depth,
// threads, directSubmitBatch, nullEngine) into an EngineChoice. lib/ has
// checked and normalized these already; this is the native backstop.
#pragma once

#include <napi.h>

#include "../engine/factory.h"

namespace blockring {

EngineChoice ReadEngineChoice(Napi::Env env, Napi::Object options);

}  // namespace blockring
