// CUDA's current device is per thread: a lane thread must bind the device its parent uses,
// or its copies land in another context. A no-op without CUDA.
#pragma once

namespace cake {

class ThreadDevice {
 public:
  // Captures the calling thread's current device (when a GPU is in use).
  static ThreadDevice capture();
  // A given GPU (-1: none, bind() does nothing).
  static ThreadDevice of(int device) {
    ThreadDevice d;
    d.device_ = device;
    return d;
  }
  // Makes it current on the calling thread.
  void bind() const;

 private:
  int device_ = -1;
};

}  // namespace cake
