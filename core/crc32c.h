// CRC-32C (Castagnoli) of the compressed-tensor format. SSE4.2's crc32 instruction when the CPU
// has it (chosen at run time), a table otherwise; both give the same value.
#pragma once

#include <cstddef>
#include <cstdint>

namespace coset {

uint32_t Crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);
// The table version, always available (the oracle in tests).
uint32_t Crc32cRef(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace coset
