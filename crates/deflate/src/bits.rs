//! The bit writer: deflate packs codes least significant bit first
//! (RFC 1951, section 3.1.1) into a caller's bounded buffer.
//!
//! zlib holds pending bits in a 16-bit word and moves whole bytes out; the
//! bytes of the stream depend only on the order of the bits, so a wider
//! accumulator writes the same stream. What must match zlib is where the
//! stream pads to a byte boundary (`bi_windup`: before a stored block's
//! lengths and after the last block), always with zero bits.

/// Bits held before whole bytes are moved to the output.
const FLUSH_AT: usize = 32;

/// An LSB-first bit writer into a fixed buffer that notes, rather than
/// panics on, running out of room.
pub struct BitWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    acc: u64,
    nbits: usize,
    overflow: bool,
}

impl<'a> BitWriter<'a> {
    /// A writer that may fill all of `out`.
    pub fn new(out: &'a mut [u8]) -> Self {
        BitWriter { out, pos: 0, acc: 0, nbits: 0, overflow: false }
    }

    /// Whether some byte did not fit: the stream is then longer than the
    /// buffer and the compression has failed.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Bytes written so far (bits still held not counted).
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Appends the low `len` bits of `value` (at most 16; the bits above
    /// them must be zero).
    #[inline]
    pub fn put_bits(&mut self, value: usize, len: usize) {
        debug_assert!(len <= 16 && value >> len == 0);
        self.acc |= (value as u64) << self.nbits;
        self.nbits += len;
        if self.nbits >= FLUSH_AT {
            self.drain_word();
        }
    }

    /// Moves four whole bytes from the accumulator to the output.
    #[inline]
    fn drain_word(&mut self) {
        let bytes = self.acc.to_le_bytes();
        match self.out.get_mut(self.pos..self.pos + 4) {
            Some(dst) => dst.copy_from_slice(&bytes[..4]),
            None => self.overflow = true,
        }
        self.pos += 4;
        self.acc >>= 32;
        self.nbits -= 32;
    }

    /// Writes one byte to the output, bits held or not.
    fn put_raw(&mut self, byte: u8) {
        match self.out.get_mut(self.pos) {
            Some(dst) => *dst = byte,
            None => self.overflow = true,
        }
        self.pos += 1;
    }

    /// Pads the held bits with zeros to a byte boundary and writes them
    /// out (zlib's `bi_windup`).
    pub fn align(&mut self) {
        while self.nbits > 0 {
            let [low, ..] = self.acc.to_le_bytes();
            self.put_raw(low);
            self.acc >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.acc = 0;
    }

    /// Writes bytes at a byte boundary (call [`BitWriter::align`] first).
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.nbits, 0);
        let end = self.pos.saturating_add(bytes.len());
        match self.out.get_mut(self.pos..end) {
            Some(dst) => dst.copy_from_slice(bytes),
            None => self.overflow = true,
        }
        self.pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_go_least_significant_first_and_pad_with_zeros() {
        let mut buf = [0xffu8; 8];
        let mut w = BitWriter::new(&mut buf);
        w.put_bits(0b1, 1);
        w.put_bits(0b01, 2);
        w.put_bits(0x1ff, 9);
        w.align();
        assert_eq!(w.len(), 2);
        assert!(!w.overflowed());
        assert_eq!(buf[..2], [0b1111_1011, 0b0000_1111]);
    }

    #[test]
    fn a_full_buffer_is_an_overflow_not_a_panic() {
        let mut buf = [0u8; 1];
        let mut w = BitWriter::new(&mut buf);
        w.put_bytes(&[1, 2]);
        assert!(w.overflowed());
        let mut w = BitWriter::new(&mut buf);
        for _ in 0..5 {
            w.put_bits(0xffff, 16);
        }
        assert!(w.overflowed());
    }
}
