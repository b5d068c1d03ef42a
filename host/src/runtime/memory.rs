//! The component's linear memory, mapped by the host so that Linux may
//! back it with transparent huge pages.
//!
//! A rebuilding push touches some 100 MB of fresh memory for a 21 MB
//! layer (the base layer's token form, zstd's window); faulting that in
//! 4 KiB at a time was a tenth of its time. Where THP is enabled only on
//! request (`madvise`, the usual default), wasmtime's own mappings never
//! ask; these do. Elsewhere wasmtime maps memory itself.

use std::ffi::c_void;
use std::sync::Arc;

use rustix::mm::{self, Advice, MapFlags, MprotectFlags, ProtFlags};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Huge pages' size on x86-64 and most arm64 kernels; the mapping is
/// aligned to it so that its first 2 MiB can be one.
const HUGE: usize = 2 << 20;

/// Makes every linear memory a [`HugeMemory`].
pub(super) fn creator() -> Arc<dyn MemoryCreator> {
    Arc::new(Creator)
}

struct Creator;

/// One linear memory: a reservation mapped inaccessible, whose first
/// `size` bytes are readable and writable, followed by the guard region
/// compiled code relies on.
struct HugeMemory {
    /// The whole mapping, as `munmap` needs it.
    mapping: *mut c_void,
    mapping_len: usize,
    /// The memory's start (`mapping` rounded up to [`HUGE`]).
    base: *mut u8,
    size: usize,
    /// Most the memory may grow to without moving.
    capacity: usize,
}

// SAFETY: the memory is plain mapped bytes, owned by one wasmtime store;
// wasmtime synchronises access to it as for its own memories.
unsafe impl Send for HugeMemory {}
// SAFETY: as above.
unsafe impl Sync for HugeMemory {}

// SAFETY: memories are zero-filled anonymous mappings that never move,
// reserve `reserved_size_in_bytes` and leave `guard_size_in_bytes`
// inaccessible after it, as the trait requires.
unsafe impl MemoryCreator for Creator {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let capacity = reserved_size_in_bytes
            .or(maximum)
            .ok_or("a linear memory with neither a reservation nor a maximum")?
            .max(minimum);
        let mapping_len = capacity
            .checked_add(guard_size_in_bytes)
            .and_then(|n| n.checked_add(HUGE))
            .ok_or("a linear memory too large to map")?;
        let map_err = |what: &str, e: rustix::io::Errno| format!("{what} linear memory: {e}");
        // SAFETY: a fresh private anonymous mapping, touching nothing else.
        let mapping = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                mapping_len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| map_err("reserving", e))?;
        let skip = (HUGE - mapping as usize % HUGE) % HUGE;
        // SAFETY: `skip` < HUGE, within the mapping.
        let base = unsafe { mapping.cast::<u8>().add(skip) };
        let mut memory = HugeMemory {
            mapping,
            mapping_len,
            base,
            size: 0,
            capacity,
        };
        // Advice only: a kernel without THP (or with it off) says no and
        // the memory works as before.
        // SAFETY: the range lies within the mapping made above.
        let _ = unsafe { mm::madvise(base.cast(), capacity, Advice::LinuxHugepage) };
        memory.grow_to(minimum).map_err(|e| format!("{e:#}"))?;
        Ok(Box::new(memory))
    }
}

// SAFETY: the base never moves; bytes below `size` are accessible, the
// rest of the reservation and the guard are not.
unsafe impl LinearMemory for HugeMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime::bail!(
                "linear memory past its reservation of {} bytes",
                self.capacity
            );
        }
        if new_size > self.size {
            // SAFETY: within the reservation, which this memory owns; wasm
            // sizes are multiples of 64 KiB, so of the page size.
            unsafe {
                mm::mprotect(
                    self.base.add(self.size).cast(),
                    new_size - self.size,
                    MprotectFlags::READ | MprotectFlags::WRITE,
                )
            }
            .map_err(|e| wasmtime::format_err!("growing linear memory: {e}"))?;
            self.size = new_size;
        }
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base
    }
}

impl Drop for HugeMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new_memory`, unmapped once.
        let _ = unsafe { mm::munmap(self.mapping, self.mapping_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_start_zeroed_grow_in_place_and_stop_at_their_reservation() {
        let ty = MemoryType::new(1, None);
        let mut m = Creator
            .new_memory(ty, 65536, None, Some(8 << 20), 65536)
            .unwrap();
        assert_eq!(m.byte_size(), 65536);
        let base = m.as_ptr();
        assert_eq!(base as usize % HUGE, 0);
        m.grow_to(4 << 20).unwrap();
        assert_eq!(m.as_ptr(), base);
        // SAFETY: within the 4 MiB just made accessible.
        let bytes = unsafe { std::slice::from_raw_parts_mut(base, 4 << 20) };
        assert!(bytes.iter().all(|&b| b == 0));
        bytes[(4 << 20) - 1] = 7;
        assert!(m.grow_to((8 << 20) + 65536).is_err());
        assert_eq!(m.byte_size(), 4 << 20);
        assert!(Creator
            .new_memory(MemoryType::new(1, None), 0, None, None, 0)
            .is_err());
    }
}
