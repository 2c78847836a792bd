#pragma once
// uint128: the compiler's 128-bit unsigned integer (GCC and Clang), for 64x64->128 multiplies in
// hashing and fixed-point clock conversion. __extension__ keeps -Wpedantic quiet about it.
namespace hypergate {
__extension__ typedef unsigned __int128 uint128;
}  // namespace hypergate
