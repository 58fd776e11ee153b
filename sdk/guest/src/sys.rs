//! Raw imports of the host ABI (module `wisp`), generated from `wisp_core::with_host_functions!`.
//! Outside wasm32 (host builds of a contract crate, e.g. for `cargo check`) each function panics:
//! contracts run only inside the Wisp VM or its test harness.

#[cfg(target_arch = "wasm32")]
macro_rules! imports {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; base = $base:expr, per_byte = $per:expr; )*) => {
        #[link(wasm_import_module = "wisp")]
        extern "C" {
            $( $(#[doc = $doc])* pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
        }
    };
}

#[cfg(not(target_arch = "wasm32"))]
macro_rules! imports {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; base = $base:expr, per_byte = $per:expr; )*) => {
        $(
            $(#[doc = $doc])*
            ///
            /// # Safety
            /// Only callable inside the Wisp VM; on other targets it panics.
            #[allow(unused_variables, clippy::missing_safety_doc)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                panic!(concat!("wisp host function `", stringify!($name), "` is only available inside the Wisp VM"))
            }
        )*
    };
}

wisp_core::with_host_functions!(imports);
