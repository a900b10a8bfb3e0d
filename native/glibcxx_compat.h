// The core build runs where the C++ runtime is gcc 11's (RHEL 9: GLIBCXX_3.4.29). gcc 12 gave
// std::condition_variable::wait(unique_lock&) a new version, GLIBCXX_3.4.30, beside the old one
// (GLIBCXX_3.4.11), which every later libstdc++ still exports with the same behaviour: calls bind
// to the old one. Included into every core source by CMake (-include); scripts/check-symbols.js
// checks that no newer version is needed.
#pragma once

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__asm__(".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
        "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
#endif
