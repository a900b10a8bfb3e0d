// Device options as libtorch devices. The full build only.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace film {

// The device for "auto", "cpu", "cuda" or "cuda:N"; RangeError or ERR_FILM_DEVICE for what cannot run here.
c10::Device TorchDevice(const std::string& spec, bool half);
int TorchCudaDeviceCount();

}  // namespace film
