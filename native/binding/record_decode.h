// Submission records (records.h layout) into engine Requests: the checks
// lib/ cannot make (device state, buffer bounds, O_DIRECT alignment, size)
// and the decoding. Runs on the ring's thread.
#pragma once

#include <cstddef>
#include <vector>

#include "../engine/engine.h"
#include "errors.h"
#include "registered_buffers.h"

namespace blockring {

// Why a record was refused.
struct RecordError {
  ErrorClass cls = ErrorClass::kType;
  const char* code = "";
  const char* message = "";  // static, or in the caller's msg buffer
};

// Where a record's buffers come from: the call's views, or (raw) the
// registered table.
struct RecordBuffers {
  const std::vector<View>& views;
  const RegisteredBuffers& registered;
  bool raw;
};

// True when rec may be accepted; else fills *err (message in msg when formatted).
bool CheckRecord(const double* rec, const RecordBuffers& bufs, const Engine& engine, RecordError* err, char* msg,
                 size_t msg_len);
// Fills r from a record CheckRecord accepted.
void DecodeRecord(const double* rec, const RecordBuffers& bufs, const Engine& engine, Request* r);

}  // namespace blockring
