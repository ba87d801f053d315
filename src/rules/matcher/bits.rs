//! Bitsets over rules, one bit a rule in file order, and the slots of the side indexes.

/// Which lookup a bitset slot holds.
pub(super) const SRC_CIDR: usize = 0;
pub(super) const SRC_FQDN: usize = 1;
pub(super) const DST_CIDR: usize = 2;
pub(super) const DST_FQDN: usize = 3;

/// Sets rule `r`'s bit.
pub(super) fn set_bit(bits: &mut [u64], r: u32) {
    let r = r as usize;
    if let Some(w) = bits.get_mut(r / 64) {
        *w |= 1 << (r % 64);
    }
}
