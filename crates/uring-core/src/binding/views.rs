//! Typed-array arguments borrowed for the length of a call (or, for op memory, until the op's
//! completion, which the JS client guarantees by keeping the array referenced).

use std::ffi::CString;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::{Memory, Results};

/// The data pointer and element count of a typed array of the `expected` kind.
///
/// # Safety
/// `env` and `value` must be a live env and a value of the current call.
unsafe fn typed_array(env: sys::napi_env, value: sys::napi_value, expected: i32, name: &str) -> Result<(*mut u8, usize)> {
    let mut kind = 0;
    let mut len = 0;
    let mut data = std::ptr::null_mut();
    let mut buffer = std::ptr::null_mut();
    let mut offset = 0;
    // SAFETY: per this function's contract; N-API reports a non-typed-array as an error status.
    let status = unsafe { sys::napi_get_typedarray_info(env, value, &mut kind, &mut len, &mut data, &mut buffer, &mut offset) };
    if status != sys::Status::napi_ok || kind != expected {
        return Err(super::args::invalid(format!("expected a {name}")));
    }
    Ok((data.cast(), len))
}

macro_rules! view {
    ($name:ident, $elem:ty, $kind:expr, $js:literal) => {
        #[doc = concat!("A borrowed `", $js, "`.")]
        pub struct $name {
            ptr: *mut $elem,
            len: usize,
        }

        impl TypeName for $name {
            fn type_name() -> &'static str {
                $js
            }
            fn value_type() -> ValueType {
                ValueType::Object
            }
        }

        impl ValidateNapiValue for $name {}

        impl FromNapiValue for $name {
            unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
                // SAFETY: called by napi with the live env and value of this call.
                let (ptr, len) = unsafe { typed_array(env, value, $kind, $js) }?;
                Ok($name { ptr: ptr.cast(), len })
            }
        }
    };
}

/// Slice access for views read during the call (not op memory, which is lent).
macro_rules! slices {
    ($name:ident, $elem:ty) => {
        impl $name {
            /// Valid for the current call only.
            pub fn as_slice(&self) -> &[$elem] {
                if self.len == 0 {
                    return &[];
                }
                // SAFETY: napi reported `len` elements at `ptr`, alive for this call.
                unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
            }
        }
    };
}

/// Mutable slice access for views written during the call (not op memory, which is lent).
macro_rules! writable {
    ($name:ident, $elem:ty) => {
        impl $name {
            /// Valid for the current call only; the caller passed this array to be written.
            pub fn as_mut_slice(&mut self) -> &mut [$elem] {
                if self.len == 0 {
                    return &mut [];
                }
                // SAFETY: napi reported `len` elements at `ptr`, alive for this call; the caller
                // passed the array to be written, and no other Rust reference to it exists during
                // the call.
                unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
            }
        }
    };
}

/// A typed array the engine itself writes into (a group's result slots, the fd a whole-file read
/// leaves open), not only the kernel. The kernel meets memory a resize took away with EFAULT; the
/// engine's own write would fault the process, so the backing must be a plain ArrayBuffer that
/// cannot shrink. (Its JS client passes only arrays it made itself.)
pub struct Fixed<T>(T);

impl<T: FromNapiValue> FromNapiValue for Fixed<T> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: called by napi with the live env and value of this call.
        let inner = unsafe { T::from_napi_value(env, value) }?;
        // SAFETY: as above; `T` parsed it as a typed array.
        unsafe { fixed_backing(env, value) }?;
        Ok(Fixed(inner))
    }
}

/// Refuses a typed array over a SharedArrayBuffer or a resizable ArrayBuffer.
///
/// # Safety
/// `env` and `value` must be a live env and a typed array of the current call.
unsafe fn fixed_backing(env: sys::napi_env, value: sys::napi_value) -> Result<()> {
    let refused = |why: &str| super::args::invalid(format!("memory the engine writes must not be backed by {why}"));
    let (mut kind, mut len, mut data, mut buffer, mut offset) = (0, 0, std::ptr::null_mut(), std::ptr::null_mut(), 0);
    let mut plain = false;
    let mut resizable = std::ptr::null_mut();
    let mut is_resizable = false;
    // SAFETY (whole block): per this function's contract; each call reports failure as a status.
    unsafe {
        if sys::napi_get_typedarray_info(env, value, &mut kind, &mut len, &mut data, &mut buffer, &mut offset) != sys::Status::napi_ok
            || sys::napi_is_arraybuffer(env, buffer, &mut plain) != sys::Status::napi_ok
        {
            return Err(super::args::invalid("expected a typed array"));
        }
        if !plain {
            return Err(refused("a SharedArrayBuffer"));
        }
        if sys::napi_get_named_property(env, buffer, c"resizable".as_ptr(), &mut resizable) != sys::Status::napi_ok {
            return Err(super::args::invalid("could not read the array's backing"));
        }
        // Not a boolean (no resizable buffers in this V8): a fixed-length buffer.
        let _ = sys::napi_get_value_bool(env, resizable, &mut is_resizable);
    }
    if is_resizable {
        return Err(refused("a resizable ArrayBuffer"));
    }
    Ok(())
}

view!(Bytes, u8, sys::TypedarrayType::uint8_array, "Uint8Array");
view!(I32s, i32, sys::TypedarrayType::int32_array, "Int32Array");
view!(F64s, f64, sys::TypedarrayType::float64_array, "Float64Array");
slices!(I32s, i32);
slices!(F64s, f64);
writable!(Bytes, u8);
writable!(I32s, i32);

impl I32s {
    /// The array as a group's result slots.
    ///
    /// # Safety
    /// The JS client must keep the array referenced, and leave it alone, until the group's
    /// completion is delivered.
    pub unsafe fn lend(self) -> Results {
        // SAFETY: per this function's contract.
        unsafe { Results::borrowed(self.ptr, self.len) }
    }
}

impl From<Fixed<I32s>> for I32s {
    fn from(value: Fixed<I32s>) -> I32s {
        value.0
    }
}

impl From<Fixed<Bytes>> for Bytes {
    fn from(value: Fixed<Bytes>) -> Bytes {
        value.0
    }
}

impl Bytes {
    pub fn len(&self) -> usize {
        self.len
    }

    /// # Safety
    /// The JS client must keep the array referenced until the op's completion is delivered.
    pub unsafe fn lend(self) -> Memory {
        // SAFETY: per this function's contract.
        unsafe { Memory::borrowed(self.ptr, self.len) }
    }

    /// `len` bytes from `at`, which the caller has checked lie inside the array.
    ///
    /// # Safety
    /// As for `lend`, and `at + len <= self.len()`.
    pub unsafe fn lend_range(&self, at: usize, len: usize) -> Memory {
        // SAFETY: per this function's contract the range is inside the array.
        unsafe { Memory::borrowed(self.ptr.add(at), len) }
    }
}

/// A path argument, converted once into the NUL-terminated string the kernel reads: one
/// allocation and one copy, where napi-rs's `String` and then a `CString` made two of each.
pub struct Path(pub CString);

impl FromNapiValue for Path {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut len = 0;
        // SAFETY (whole block): a live env and a value of this call; N-API reports a non-string
        // as an error status, writes at most `capacity` bytes (its NUL included) and says how many.
        unsafe {
            if sys::napi_get_value_string_utf8(env, value, std::ptr::null_mut(), 0, &mut len) != sys::Status::napi_ok {
                return Err(super::args::invalid("expected a string path"));
            }
            let mut bytes = Vec::<u8>::with_capacity(len + 1);
            let mut written = 0;
            if sys::napi_get_value_string_utf8(env, value, bytes.as_mut_ptr().cast(), len + 1, &mut written) != sys::Status::napi_ok {
                return Err(super::args::invalid("expected a string path"));
            }
            bytes.set_len(written);
            CString::new(bytes).map(Path).map_err(|_| super::args::invalid("paths must not contain NUL bytes"))
        }
    }
}
