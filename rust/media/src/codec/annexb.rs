//! Just enough Annex-B parsing to tell what an access unit holds.

/// The NAL unit types (5 = IDR slice, 7 = SPS, 8 = PPS, ...) of an Annex-B byte stream, in
/// order. Bytes before the first start code are ignored.
pub fn nal_unit_types(access_unit: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut zeros = 0usize;
    let mut i = 0;
    while i < access_unit.len() {
        let b = access_unit[i];
        // A start code is two or more zero bytes then a one; the NAL header follows it.
        if b == 1 && zeros >= 2 {
            if let Some(&header) = access_unit.get(i + 1) {
                types.push(header & 0x1f);
            }
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        i += 1;
    }
    types
}

#[cfg(test)]
mod tests {
    use super::nal_unit_types;

    #[test]
    fn finds_three_and_four_byte_start_codes() {
        let au = [0, 0, 0, 1, 0x67, 9, 9, 0, 0, 1, 0x68, 7, 0, 0, 0, 1, 0x65, 1, 2];
        assert_eq!(nal_unit_types(&au), vec![7, 8, 5]);
        assert_eq!(nal_unit_types(&[1, 2, 3]), Vec::<u8>::new());
        assert_eq!(nal_unit_types(&[0, 0, 1]), Vec::<u8>::new());
    }
}
