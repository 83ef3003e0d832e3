// Dense packing of codebook symbols (alphabet S = q^s) into bytes.
//
// Symbols are packed in groups of k, where k is the largest count with S^k <= 2^64: a group is the
// base-S number sum_j sym_j S^j written in bitwidth(S^k - 1) bits, least significant bit first.
// For power-of-two S this is plain bit packing (log2 S bits per symbol); for odd q it stays within
// a fraction of a percent of log2 S bits per symbol (q = 3, D4: 10 symbols in 64 bits). The last
// group of a row holds the remainder r < k symbols in bitwidth(S^r - 1) bits; each row starts on
// a byte boundary so rows can be packed and unpacked in parallel.
#pragma once

#include <cstdint>

namespace coset {

// Bits needed to write v (0 for 0): the width of packed fields here, in bucket packets and in the
// exact-sum words.
int BitWidth(unsigned __int128 v);

class SymbolPacking {
 public:
  SymbolPacking() = default;
  SymbolPacking(uint64_t alphabet, int64_t symbols_per_row);

  int64_t row_bytes() const { return row_bytes_; }
  int64_t row_bits() const { return row_bits_; }
  int group_size() const { return group_size_; }
  int bits_per_symbol_if_pow2() const { return pow2_bits_; }  // 0 when S is not a power of two

  // symbols: symbols_per_row values < S. out: row_bytes bytes (tail bits zeroed).
  void PackRow(const uint32_t* symbols, uint8_t* out) const;
  // in: row_bytes bytes. Returns false if the bytes hold a group value >= S^k (corrupt input).
  bool UnpackRow(const uint8_t* in, uint32_t* symbols) const;

 private:
  uint64_t alphabet_ = 2;
  int64_t symbols_per_row_ = 0;
  int group_size_ = 1;
  int group_bits_ = 1;
  int tail_size_ = 0;
  int tail_bits_ = 0;
  int pow2_bits_ = 0;
  int64_t row_bits_ = 0;
  int64_t row_bytes_ = 0;
  unsigned __int128 group_limit_ = 0;  // S^k
  unsigned __int128 tail_limit_ = 0;   // S^r
};

}  // namespace coset
