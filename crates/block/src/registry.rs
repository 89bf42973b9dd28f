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
