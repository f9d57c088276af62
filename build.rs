//! Makes the binaries load the libpython they were linked against.
//!
//! Without an rpath the dynamic loader takes the first `libpython3.x.so` on its
//! search path, which on a machine with two installs of the same minor version
//! is silently the wrong one.
fn main() {
    #[cfg(feature = "python")]
    pyo3_build_config::add_libpython_rpath_link_args();
}
