//! The text descriptor of a vmdk image: the one qemu-img writes (its
//! `desc_template` in `vmdk_co_do_create`), and the way qemu reads one back
//! (`vmdk_read_cid`, `vmdk_parse_description`, `vmdk_parent_open`,
//! `vmdk_parse_extents`).
//!
//! qemu reads descriptors as C strings with `strstr` and `sscanf`, not as
//! lines of `key=value`; reading them the same way (the text ends at the
//! first NUL, a key is found anywhere, `sscanf` skips newlines as
//! whitespace) is what makes instar accept, refuse and report exactly the
//! descriptors qemu does. Text is handled as bytes: qemu never decodes it.

use instar_core::ctext::{decimal, is_space, sign, skip_space};

/// Bytes qemu reads when it looks for the CIDs and the parent's name
/// (qemu's `DESC_SIZE`: 20 sectors).
pub const DESC_SIZE: usize = 20 * 512;

/// The longest descriptor qemu reads when it parses extents (1 MiB - 1).
pub const MAX_DESC_READ: u64 = (1 << 20) - 1;

/// The parent's CID written when there is no parent.
pub const NO_PARENT_CID: u32 = 0xffff_ffff;

/// qemu formats `parentFileNameHint="..."` into a buffer of this many
/// bytes (`BUF_SIZE`), so longer lines are cut.
const PARENT_LINE_BUF: usize = 4096;

/// Longest `createType` value qemu copies (its buffer is 128 bytes).
const CREATE_TYPE_BUF: usize = 128;

/// Longest `parentFileNameHint` qemu accepts (its buffer is `PATH_MAX`).
const PARENT_HINT_MAX: usize = 4096 - 1;

/// One line of the extent section of a new descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// The extent's sectors.
    pub sectors: u64,
    /// `FLAT` (with start offset 0) rather than `SPARSE`.
    pub flat: bool,
    /// The extent file's base name.
    pub file_name: Vec<u8>,
}

impl ExtentLine {
    fn write(&self, out: &mut Vec<u8>) {
        let kind = if self.flat { "FLAT" } else { "SPARSE" };
        out.extend_from_slice(format!("RW {} {kind} \"", self.sectors).as_bytes());
        out.extend_from_slice(&self.file_name);
        out.extend_from_slice(if self.flat { b"\" 0\n" } else { b"\"\n" });
    }
}

/// What a new descriptor says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDescriptor {
    /// The image's content ID.
    pub cid: u32,
    /// The parent's content ID, or [`NO_PARENT_CID`].
    pub parent_cid: u32,
    /// The subformat's name.
    pub create_type: &'static str,
    /// The backing file name as the user gave it.
    pub parent_hint: Option<Vec<u8>>,
    /// The extent section.
    pub extents: Vec<ExtentLine>,
    /// `ddb.virtualHWVersion`.
    pub hw_version: String,
    /// `ddb.geometry.cylinders` (signed: qemu divides a signed size).
    pub cylinders: i64,
    /// `ddb.geometry.heads`.
    pub heads: u32,
    /// `ddb.adapterType`.
    pub adapter_type: &'static str,
    /// `ddb.toolsVersion` (`None`: qemu before 6.2 writes no such line).
    pub tools_version: Option<String>,
}

impl NewDescriptor {
    /// The descriptor text, byte for byte as qemu-img writes it: the CIDs
    /// in lowercase hex without padding, and the parent's name on the line
    /// that otherwise stays empty.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(
            format!(
                "# Disk DescriptorFile\nversion=1\nCID={:x}\nparentCID={:x}\ncreateType=\"{}\"\n",
                self.cid, self.parent_cid, self.create_type
            )
            .as_bytes(),
        );
        if let Some(hint) = &self.parent_hint {
            let mut line = b"parentFileNameHint=\"".to_vec();
            line.extend_from_slice(hint);
            line.push(b'"');
            line.truncate(PARENT_LINE_BUF - 1);
            out.extend_from_slice(&line);
        }
        out.extend_from_slice(b"\n# Extent description\n");
        for e in &self.extents {
            e.write(&mut out);
        }
        out.extend_from_slice(b"\n# The Disk Data Base\n#DDB\n\n");
        out.extend_from_slice(b"ddb.virtualHWVersion = \"");
        out.extend_from_slice(self.hw_version.as_bytes());
        out.extend_from_slice(
            format!(
                "\"\nddb.geometry.cylinders = \"{}\"\nddb.geometry.heads = \"{}\"\n\
                 ddb.geometry.sectors = \"63\"\nddb.adapterType = \"{}\"\n",
                self.cylinders, self.heads, self.adapter_type
            )
            .as_bytes(),
        );
        if let Some(tools) = &self.tools_version {
            out.extend_from_slice(b"ddb.toolsVersion = \"");
            out.extend_from_slice(tools.as_bytes());
            out.extend_from_slice(b"\"\n");
        }
        out
    }
}

/// The C string at the start of `buf`: everything before the first NUL.
pub fn c_str(buf: &[u8]) -> &[u8] {
    match buf.iter().position(|&b| b == 0) {
        Some(n) => &buf[..n],
        None => buf,
    }
}

/// The offset of the first `needle` in `hay` (C's `strstr`).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `sscanf(s, "%x", &u32)`: the value, or `None` when no hex number
/// starts the text. Overflow saturates and negative numbers wrap, as
/// glibc's `strtoul` does before the value is cut to 32 bits.
pub fn scan_hex_u32(s: &[u8]) -> Option<u32> {
    let (negative, mut i) = sign(s, skip_space(s, 0));
    let mut digits = 0usize;
    if s.get(i) == Some(&b'0') && matches!(s.get(i + 1), Some(b'x' | b'X')) {
        // "0x": the leading zero counts as a digit even if no hex follows.
        i += 2;
        digits = 1;
    }
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(16)) {
        match value.checked_mul(16).and_then(|v| v.checked_add(u64::from(d))) {
            Some(v) => value = v,
            None => overflow = true,
        }
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if overflow {
        value = u64::MAX;
    } else if negative {
        value = value.wrapping_neg();
    }
    #[allow(clippy::cast_possible_truncation, reason = "sscanf stores the unsigned long in a u32")]
    Some(value as u32)
}

/// The content ID (`parent` false) or the parent's content ID (`parent`
/// true) in a descriptor buffer, found as qemu finds it: the first
/// occurrence of `CID` (or `parentCID`) anywhere, its value right after
/// the `=` it assumes follows.
pub fn read_cid(desc: &[u8], parent: bool) -> Option<u32> {
    let desc = c_str(desc);
    let key: &[u8] = if parent { b"parentCID" } else { b"CID" };
    let at = find(desc, key)? + key.len() + 1;
    scan_hex_u32(desc.get(at..).unwrap_or(&[]))
}

/// The quoted value of `name` (qemu's `vmdk_parse_description`): found
/// anywhere, the two characters after the name skipped, up to the next
/// `"`; `None` when that quote is missing or the value does not fit
/// qemu's 128-byte buffer.
pub fn parse_description(desc: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let desc = c_str(desc);
    let start = find(desc, name)? + name.len() + 2;
    if start >= desc.len() {
        return None;
    }
    let len = desc[start..].iter().position(|&b| b == b'"')?;
    if CREATE_TYPE_BUF < len + 1 {
        return None;
    }
    Some(desc[start..start + len].to_vec())
}

/// The backing file name in a descriptor buffer (`parentFileNameHint`):
/// `Ok(None)` without one, `Err(())` when its closing quote is missing or
/// it is longer than qemu's buffer.
#[allow(clippy::result_unit_err)]
pub fn parent_hint(desc: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    let desc = c_str(desc);
    let key = b"parentFileNameHint";
    let Some(at) = find(desc, key) else {
        return Ok(None);
    };
    let start = at + key.len() + 2;
    let rest = desc.get(start..).ok_or(())?;
    let len = rest.iter().position(|&b| b == b'"').ok_or(())?;
    if len > PARENT_HINT_MAX {
        return Err(());
    }
    Ok(Some(rest[..len].to_vec()))
}

/// What `sscanf(p, "%10s %ld %10s \"%511[^\n\r\"]\" %ld", ...)` makes of
/// the text at the start of an extent line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScannedExtent {
    /// How many conversions succeeded (`sscanf`'s return value; -1 for
    /// input that ends before the first).
    pub matches: i32,
    /// The access mode (`RW`, `RDONLY`, `NOACCESS`).
    pub access: Vec<u8>,
    /// The size in sectors.
    pub sectors: i64,
    /// The extent type (`FLAT`, `SPARSE`, ...).
    pub kind: Vec<u8>,
    /// The extent file name.
    pub file_name: Vec<u8>,
    /// The start offset of a flat extent, in sectors (-1 when absent).
    pub flat_offset: i64,
}

/// `%Ns`: up to `width` non-space bytes after skipping spaces.
fn scan_word(s: &[u8], i: usize, width: usize) -> Option<(Vec<u8>, usize)> {
    let start = skip_space(s, i);
    let mut end = start;
    while end < s.len() && end - start < width && !is_space(s[end]) {
        end += 1;
    }
    if end == start {
        return None;
    }
    Some((s[start..end].to_vec(), end))
}

/// `%ld`: a decimal number after skipping spaces, saturating on overflow.
fn scan_i64(s: &[u8], i: usize) -> Option<(i64, usize)> {
    let (negative, start) = sign(s, skip_space(s, i));
    let (magnitude, j, _) = decimal(s, start);
    if j == start {
        return None;
    }
    let value = if negative { -i128::from(magnitude) } else { i128::from(magnitude) };
    #[allow(clippy::cast_possible_truncation, reason = "clamped to i64's range")]
    let value = value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    Some((value, j))
}

/// Reads an extent line the way qemu's `sscanf` does. `s` is the text from
/// the start of the line to the end of the descriptor: like `sscanf`, the
/// scan may run past the line's end while it skips spaces.
pub fn scan_extent(s: &[u8], previous_sectors: i64) -> ScannedExtent {
    let mut out = ScannedExtent {
        matches: 0,
        sectors: previous_sectors,
        flat_offset: -1,
        ..Default::default()
    };
    let Some((access, i)) = scan_word(s, 0, 10) else {
        out.matches = -1;
        return out;
    };
    out.access = access;
    out.matches = 1;
    let Some((sectors, i)) = scan_i64(s, i) else { return out };
    out.sectors = sectors;
    out.matches = 2;
    let Some((kind, i)) = scan_word(s, i, 10) else { return out };
    out.kind = kind;
    out.matches = 3;
    let i = skip_space(s, i);
    if s.get(i) != Some(&b'"') {
        return out;
    }
    let start = i + 1;
    let mut end = start;
    while end < s.len() && end - start < 511 && !matches!(s[end], b'\n' | b'\r' | b'"') {
        end += 1;
    }
    if end == start {
        return out;
    }
    out.file_name = s[start..end].to_vec();
    out.matches = 4;
    if s.get(end) != Some(&b'"') {
        return out;
    }
    if let Some((offset, _)) = scan_i64(s, end + 1) {
        out.flat_offset = offset;
        out.matches = 5;
    }
    out
}

/// The lines of a descriptor as qemu walks them: each line runs to the
/// end of the text (see [`scan_extent`]), and the line itself (without
/// its `\n`) is what qemu quotes in errors.
pub fn lines(desc: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let desc = c_str(desc);
    let mut p = 0;
    std::iter::from_fn(move || {
        if p >= desc.len() {
            return None;
        }
        let rest = &desc[p..];
        let line_len = rest.iter().position(|&b| b == b'\n');
        let (line, next) = match line_len {
            Some(n) => (&rest[..n], p + n + 1),
            None => (rest, desc.len()),
        };
        p = next;
        Some((rest, line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cid: u32, hint: Option<&str>) -> NewDescriptor {
        NewDescriptor {
            cid,
            parent_cid: NO_PARENT_CID,
            create_type: "monolithicSparse",
            parent_hint: hint.map(|h| h.as_bytes().to_vec()),
            extents: vec![ExtentLine {
                sectors: 2_097_152,
                flat: false,
                file_name: b"a.vmdk".to_vec(),
            }],
            hw_version: "4".to_string(),
            cylinders: 2080,
            heads: 16,
            adapter_type: "ide",
            tools_version: Some("2147483647".to_string()),
        }
    }

    #[test]
    fn text_matches_qemu() {
        // As qemu-img 10.0.2 wrote it for `create -f vmdk a.vmdk 1G`.
        let want = "# Disk DescriptorFile\nversion=1\nCID=81e537c\nparentCID=ffffffff\n\
                    createType=\"monolithicSparse\"\n\n# Extent description\n\
                    RW 2097152 SPARSE \"a.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n\
                    ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"2080\"\n\
                    ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\n\
                    ddb.adapterType = \"ide\"\nddb.toolsVersion = \"2147483647\"\n";
        assert_eq!(String::from_utf8(sample(0x81e537c, None).to_bytes()).unwrap(), want);
    }

    #[test]
    fn parent_hint_takes_the_blank_line() {
        let text = String::from_utf8(sample(1, Some("base.vmdk")).to_bytes()).unwrap();
        assert!(text.contains(
            "createType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\n# Extent"
        ));
        let long = "x".repeat(5000);
        let text = sample(1, Some(&long)).to_bytes();
        let line = &text[find(&text, b"parentFileNameHint").unwrap()..];
        assert_eq!(line.iter().position(|&b| b == b'\n'), Some(4095));
    }

    #[test]
    fn cids_are_read_like_sscanf() {
        let d = sample(0xabc, None).to_bytes();
        assert_eq!(read_cid(&d, false), Some(0xabc));
        assert_eq!(read_cid(&d, true), Some(0xffff_ffff));
        assert_eq!(read_cid(b"CID=  -1\n", false), Some(0xffff_ffff));
        assert_eq!(read_cid(b"CID=123456789abc\n", false), Some(0x5678_9abc));
        assert_eq!(read_cid(b"CID=fffffffffffffffff\n", false), Some(0xffff_ffff));
        assert_eq!(read_cid(b"CID=zz\n", false), None);
        // qemu-img 10.0.2 reports cid 4294967295 for a descriptor whose
        // `CID=` line is renamed: it finds "CID" inside "parentCID".
        assert_eq!(read_cid(b"XID=1\nparentCID=ffffffff\n", false), Some(0xffff_ffff));
        assert_eq!(read_cid(b"CID=1\0parentCID=2", true), None, "stops at NUL");
    }

    #[test]
    fn description_values() {
        let d = b"createType=\"twoGbMaxExtentFlat\"\n";
        assert_eq!(parse_description(d, b"createType"), Some(b"twoGbMaxExtentFlat".to_vec()));
        assert_eq!(parse_description(b"createType=\"x", b"createType"), None);
        assert_eq!(parse_description(b"createType", b"createType"), None);
        let long = format!("createType=\"{}\"", "a".repeat(128));
        assert_eq!(parse_description(long.as_bytes(), b"createType"), None);
        assert_eq!(parent_hint(b"parentFileNameHint=\"b.vmdk\"\n"), Ok(Some(b"b.vmdk".to_vec())));
        assert_eq!(parent_hint(b"parentFileNameHint=\"b.vmdk\n"), Err(()));
        assert_eq!(parent_hint(b"nothing"), Ok(None));
    }

    #[test]
    fn extent_lines_scan_like_sscanf() {
        let s = scan_extent(b"RW 4194304 FLAT \"t-f001.vmdk\" 0\nRW 1", 0);
        assert_eq!((s.matches, s.sectors, s.flat_offset), (5, 4_194_304, 0));
        assert_eq!((s.access.as_slice(), s.kind.as_slice()), (&b"RW"[..], &b"FLAT"[..]));
        assert_eq!(s.file_name, b"t-f001.vmdk");
        // A sparse line followed by another extent line stops at "RW".
        let s = scan_extent(b"RW 8 SPARSE \"a\"\nRW 8 SPARSE \"b\"\n", 0);
        assert_eq!(s.matches, 4);
        // ...but a following line starting with a digit is read as offset.
        assert_eq!(scan_extent(b"RW 8 SPARSE \"a\"\n7", 0).matches, 5);
        assert_eq!(scan_extent(b"ddb.virtualHWVersion = \"4\"", 3).matches, 1);
        assert_eq!(scan_extent(b"ddb.virtualHWVersion = \"4\"", 3).access, b"ddb.virtua");
        assert_eq!(scan_extent(b"   \n ", 0).matches, -1);
        assert_eq!(scan_extent(b"RW 8 SPARSE \"\"", 0).matches, 3);
        // Empty lines let sscanf read on into the next line.
        assert_eq!(scan_extent(b"\nRW 8 SPARSE \"a\"", 0).matches, 4);
    }

    #[test]
    fn lines_keep_the_rest_of_the_text() {
        let got: Vec<_> = lines(b"a\nbc\n\nd\0e").collect();
        assert_eq!(
            got,
            vec![
                (&b"a\nbc\n\nd"[..], &b"a"[..]),
                (&b"bc\n\nd"[..], &b"bc"[..]),
                (&b"\nd"[..], &b""[..]),
                (&b"d"[..], &b"d"[..]),
            ]
        );
    }
}
