//! The formats instar knows, by their command-line names.

use instar_core::Format;

/// Every format, in the order probing tries them.
pub static FORMATS: &[&dyn Format] = &[
    &instar_raw::Raw,
    &instar_qcow2::Qcow2,
    &instar_vmdk::Vmdk,
    &instar_vpc::Vpc,
    &instar_vhdx::Vhdx,
];

/// The format called `name` on the command line.
pub fn find_format(name: &str) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|f| f.name() == name)
}

/// The format called `name`, or the error to give: instar's refusal for a
/// format only qemu implements, else `unknown` (qemu's wording for a name
/// it does not know, which differs between commands).
pub fn lookup(
    name: &str,
    unknown: impl FnOnce() -> instar_core::Error,
) -> Result<&'static dyn Format, instar_core::Error> {
    if let Some(f) = find_format(name) {
        return Ok(f);
    }
    if crate::unsupported::QEMU_ONLY_FORMATS.contains(&name) {
        return Err(instar_core::Error::invalid(crate::unsupported::not_supported(name)));
    }
    Err(unknown())
}
