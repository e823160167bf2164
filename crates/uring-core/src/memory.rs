/// Memory an operation reads into or writes from.
///
/// `Owned` memory belongs to the operation's slot and is handed back in its completion.
/// `Borrowed` memory belongs to the caller (a JS buffer), who promises to keep it alive and
/// unmoved until the operation's completion has been delivered.
#[derive(Debug)]
pub enum Memory {
    Owned(Vec<u8>),
    Borrowed { ptr: *mut u8, len: usize },
}

// SAFETY: the engine only hands the pointer to the kernel and never dereferences borrowed memory;
// the caller's contract keeps it valid across threads until the completion.
unsafe impl Send for Memory {}

impl Memory {
    /// Owned, zeroed memory of `len` bytes for the kernel to read into.
    pub fn zeroed(len: usize) -> Memory {
        Memory::Owned(vec![0; len])
    }

    /// Owned memory holding `bytes` (for writes).
    pub fn from_vec(bytes: Vec<u8>) -> Memory {
        Memory::Owned(bytes)
    }

    /// # Safety
    /// `ptr..ptr+len` must stay valid, unmoved and not otherwise written until the completion of
    /// the operation that uses it has been delivered.
    pub unsafe fn borrowed(ptr: *mut u8, len: usize) -> Memory {
        Memory::Borrowed { ptr, len }
    }

    /// Bytes available to the kernel.
    pub fn len(&self) -> usize {
        match self {
            Memory::Owned(v) => v.len(),
            Memory::Borrowed { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn is_owned(&self) -> bool {
        matches!(self, Memory::Owned(_))
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            Memory::Owned(v) => v.as_mut_ptr(),
            Memory::Borrowed { ptr, .. } => *ptr,
        }
    }

    /// The owned buffer cut to the `filled` bytes the kernel produced.
    pub(crate) fn into_filled(self, filled: usize) -> Option<Vec<u8>> {
        match self {
            Memory::Owned(mut v) => {
                v.truncate(filled);
                Some(v)
            }
            Memory::Borrowed { .. } => None,
        }
    }
}
