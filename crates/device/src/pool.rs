//! Buffer pool: freed storage buffers are kept by size class and handed out again, so a training loop
//! of thousands of steps holds a steady amount of device memory.
//!
//! Reuse is safe without fences because every use of a buffer is recorded on the one queue in program
//! order: a dispatch that writes a reused buffer runs after every earlier dispatch that read it. Host
//! writes (`queue.write_buffer`) are the exception, so uploads flush the open encoder first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Smallest buffer handed out, in bytes.
const MIN_CLASS: u64 = 256;

/// Memory held by a device's pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in buffers currently owned by tensors.
    pub live_bytes: u64,
    /// Bytes in freed buffers kept for reuse.
    pub pooled_bytes: u64,
    /// Highest `live_bytes` seen.
    pub peak_live_bytes: u64,
}

/// Rounds a request up to its size class: powers of two up to 4 KiB, then four classes per doubling,
/// so at most 25% of a large buffer is slack.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(MIN_CLASS);
    if b <= 4096 {
        return b.next_power_of_two();
    }
    let step = (1u64 << (63 - b.leading_zeros())) / 4;
    b.next_multiple_of(step)
}

/// The size class of a request on a device whose largest bindable buffer is `cap` bytes: the class,
/// but never past `cap`, since a tensor that passed the binding check must still be bindable whole
/// (wgpu reports 2^31 - 1 on Vulkan and DX12 and `max_buffer_size` on Metal, not class boundaries).
pub(crate) fn capped_class(bytes: u64, cap: u64) -> u64 {
    size_class(bytes).min(cap.max(bytes))
}

pub(crate) struct Pool {
    device: wgpu::Device,
    /// The device's max storage binding, rounded down to 4 bytes: no class goes past it.
    max_class: u64,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    stats: MemoryStats,
}

/// A storage buffer that returns to its pool when dropped.
pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    pool: Arc<Pool>,
}

impl PooledBuffer {
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buffer.as_ref().expect("pooled buffer used after drop")
    }

    pub(crate) fn size(&self) -> u64 {
        self.class
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            let mut st = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stats.live_bytes -= self.class;
            st.stats.pooled_bytes += self.class;
            st.free.entry(self.class).or_default().push(buffer);
        }
    }
}

impl Pool {
    pub(crate) fn new(device: wgpu::Device, max_binding_bytes: u64) -> Self {
        Self {
            device,
            max_class: max_binding_bytes & !3,
            state: Mutex::new(PoolState::default()),
        }
    }

    pub(crate) fn take(self: &Arc<Self>, bytes: u64) -> PooledBuffer {
        let class = capped_class(bytes, self.max_class);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let reused = st.free.get_mut(&class).and_then(Vec::pop);
        if reused.is_some() {
            st.stats.pooled_bytes -= class;
        }
        st.stats.live_bytes += class;
        st.stats.peak_live_bytes = st.stats.peak_live_bytes.max(st.stats.live_bytes);
        drop(st);
        let buffer = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgrad tensor"),
                size: class,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        PooledBuffer {
            buffer: Some(buffer),
            class,
            pool: self.clone(),
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stats
    }

    pub(crate) fn trim(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.free.clear();
        st.stats.pooled_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::{capped_class, size_class};

    #[test]
    fn size_classes_cover_the_request_with_bounded_slack() {
        for bytes in [
            0u64,
            1,
            255,
            256,
            257,
            4096,
            4097,
            5000,
            1 << 20,
            (1 << 20) + 1,
            123_456_789,
        ] {
            let c = size_class(bytes);
            assert!(c >= bytes.max(256), "{bytes} -> {c}");
            if bytes > 4096 {
                assert!(c as f64 <= bytes as f64 * 1.25 + 1.0, "{bytes} -> {c}");
            }
        }
        assert_eq!(size_class(4097), 5120);
    }

    #[test]
    fn classes_never_pass_the_binding_limit() {
        let cap = ((1u64 << 31) - 1) & !3; // Vulkan / DX12 in wgpu: 2^31 - 1
        for bytes in [4u64, 4096, (3u64 << 29) + 4, (1 << 31) - 4, cap] {
            let c = capped_class(bytes, cap);
            assert!(c >= bytes && c <= cap, "{bytes} -> {c}");
        }
        assert_eq!(capped_class((7u64 << 28) + 4, cap), cap); // would be 2^31 uncapped
        assert_eq!(capped_class(1000, 1 << 27), size_class(1000));
    }
}
