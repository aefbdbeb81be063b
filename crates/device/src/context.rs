//! The wgpu context: adapter choice, the open command encoder, the params arena, the pipeline cache.
//!
//! The path of one op: a launcher asks the pool for an output buffer, writes its small `Params` struct
//! into the arena, and records a dispatch into the open compute pass. Nothing is submitted until a
//! readback, an upload, a full arena, or [`Device::synchronize`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{DeviceError, Result};
use crate::kernels::fused::{self, Program};
use crate::kernels::{BinaryOp, Kernel, UnaryOp};
use crate::pool::{MemoryStats, Pool, PooledBuffer};
use crate::tuning::{ShapeClass, Tuning};

/// What `wgrad info` and `Device::info()` report about an adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl AdapterSummary {
    fn of(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }
}

/// The chosen adapter with the limits and optional features the device was created with.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Lanes per subgroup, when the device has subgroup ops and one fixed subgroup size.
    pub subgroup_size: Option<u32>,
    /// Whether the device can run the kernels that move 32 bytes per storage access
    /// (`shaders/wide.wgsl`): CPU adapters with 64-bit integers, where an access costs the same at
    /// any width. They are used by default where they can be (see `Device::set_wide_storage`).
    pub wide_storage: bool,
}

/// Whether a binding is read by the kernel only or also written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

/// One storage binding of a dispatch: its slot in group 0, the buffer, and the access.
pub(crate) struct Binding<'a> {
    pub slot: u32,
    pub buffer: &'a PooledBuffer,
    pub access: Access,
}

pub(crate) fn rw(slot: u32, buffer: &PooledBuffer) -> Binding<'_> {
    Binding {
        slot,
        buffer,
        access: Access::ReadWrite,
    }
}

pub(crate) fn ro(slot: u32, buffer: &PooledBuffer) -> Binding<'_> {
    Binding {
        slot,
        buffer,
        access: Access::Read,
    }
}

thread_local! {
    /// Set while this thread records a fused program, whose dispatch must not emit it again.
    static EMITTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Optional features wgrad uses when the adapter has them.
const WANTED_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::SHADER_F16);

/// Bytes of per-dispatch parameters recorded before the open work is submitted.
const ARENA_BYTES: u64 = 1 << 20;

type LayoutKey = Vec<(u32, Access)>;
type PipelineKey = (Kernel, &'static str, Vec<(&'static str, u64)>);
/// A bind group's layout, its parameter block's size, and its buffers by slot.
type BindKey = (wgpu::BindGroupLayout, u64, Vec<(u32, wgpu::Buffer)>);

/// Bind groups kept for reuse; past this many the cache starts over (a training step uses a few
/// hundred, the same ones every step, since the pool hands out buffers in the same order).
const BIND_GROUPS_KEPT: usize = 4096;

struct Recording {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<u8>,
    dispatches: u64,
}

struct Caches {
    modules: HashMap<Kernel, Arc<wgpu::ShaderModule>>,
    /// Pipelines of generated kernels (`kernels::fused`), by program signature and layout.
    generated: HashMap<(String, LayoutKey), Arc<wgpu::ComputePipeline>>,
    layouts: HashMap<LayoutKey, (Arc<wgpu::BindGroupLayout>, Arc<wgpu::PipelineLayout>)>,
    pipelines: HashMap<(PipelineKey, LayoutKey), Arc<wgpu::ComputePipeline>>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: DeviceInfo,
    pool: Arc<Pool>,
    arena: wgpu::Buffer,
    param_align: u64,
    recording: Mutex<Recording>,
    caches: Mutex<Caches>,
    /// Bind groups by layout and buffers: the parameters sit at a dynamic offset in the arena, so a
    /// dispatch on the same buffers as an earlier one reuses its bind group (see `record`).
    bind_groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    tuning: Tuning,
    gpu_error: Arc<Mutex<Option<String>>>,
    total_dispatches: std::sync::atomic::AtomicU64,
    total_bind_groups: std::sync::atomic::AtomicU64,
    /// Per-kernel totals while profiling is on (see `set_profiling`).
    profile: Mutex<Option<HashMap<String, KernelTime>>>,
    /// Timestamp queries around compute passes while the GPU timer runs.
    timer: Mutex<Option<GpuTimer>>,
    /// Whether the wide kernels are in use (see `set_wide_storage`).
    wide: std::sync::atomic::AtomicBool,
    /// Whether element-wise ops are fused (see `set_fusion`), and the pending program.
    fusion: std::sync::atomic::AtomicBool,
    fused: Mutex<Option<Program>>,
}

/// Compute passes one run of the GPU timer can time; later passes go untimed (and the run reports
/// no figure rather than a partial one).
const TIMER_PASSES: u32 = 512;

struct GpuTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    passes: u32,
    overflow: bool,
}

/// Wall time spent in one kernel entry point while profiling.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelTime {
    /// `family/entry`, e.g. `conv/im2col`.
    pub name: String,
    pub calls: u64,
    pub ms: f64,
}

/// A handle to one wgpu device and its queue. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Device({} on {})",
            self.inner.info.adapter.name, self.inner.info.adapter.backend
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-op; the data is still consistent
    // enough to continue (worst case an open encoder is dropped).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u8 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    }
}

/// Every adapter wgpu finds on this machine (honouring `WGPU_BACKEND`), best first.
pub fn enumerate_adapters() -> Vec<AdapterSummary> {
    sorted_adapters(&new_instance())
        .iter()
        .map(|a| AdapterSummary::of(&a.get_info()))
        .collect()
}

fn sorted_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (type_rank(i.device_type), backend_rank(i.backend))
    });
    adapters
}

impl Device {
    /// Picks an adapter without a window and creates a device on it.
    ///
    /// `WGRAD_ADAPTER` (a case-insensitive substring of the adapter name, or a backend name such as
    /// `gl` / `vulkan`) and `WGPU_BACKEND` override the choice; otherwise discrete > integrated >
    /// virtual > CPU adapters are preferred.
    pub fn new() -> Result<Self> {
        let want = std::env::var("WGRAD_ADAPTER").ok();
        Self::select(want.as_deref())
    }

    /// Creates a device on the best adapter whose name or backend contains `want` (any if `None`).
    pub fn select(want: Option<&str>) -> Result<Self> {
        let instance = new_instance();
        let adapters = sorted_adapters(&instance);
        if adapters.is_empty() {
            return Err(DeviceError::NoAdapter(
                "wgpu found no adapter (on Linux without a GPU, install Mesa's lavapipe: \
                 apt-get install mesa-vulkan-drivers)"
                    .into(),
            ));
        }
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        let chosen = match want {
            None => adapters.into_iter().next(),
            Some(w) => {
                let w = w.to_lowercase();
                adapters.into_iter().find(|a| {
                    let i = a.get_info();
                    i.name.to_lowercase().contains(&w)
                        || format!("{:?}", i.backend).to_lowercase() == w
                })
            }
        };
        let adapter = chosen.ok_or_else(|| {
            DeviceError::NoAdapter(format!(
                "no adapter matches WGRAD_ADAPTER={:?}; found: {}",
                want.unwrap_or(""),
                names.join(", ")
            ))
        })?;
        Self::from_adapter(adapter)
    }

    /// One device per adapter wgpu finds, with the error for each that cannot be opened.
    /// Tests use this to run one body on every backend the machine has.
    pub fn all() -> Vec<(AdapterSummary, Result<Device>)> {
        let instance = new_instance();
        sorted_adapters(&instance)
            .into_iter()
            .map(|a| (AdapterSummary::of(&a.get_info()), Self::from_adapter(a)))
            .collect()
    }

    fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let summary = AdapterSummary::of(&adapter.get_info());
        let adapter_info = adapter.get_info();
        // 64-bit integers only serve the wide kernels, which only pay on CPU adapters.
        let wide = adapter_info.device_type == wgpu::DeviceType::Cpu
            && adapter.features().contains(wgpu::Features::SHADER_INT64);
        let mut features = adapter.features() & WANTED_FEATURES;
        if wide {
            features |= wgpu::Features::SHADER_INT64;
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgrad"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| DeviceError::RequestDevice {
            adapter: summary.name.clone(),
            message: e.to_string(),
        })?;

        // Errors outside our error scopes (a bad dispatch) are kept and returned by the next
        // synchronisation instead of wgpu's default panic.
        let gpu_error = Arc::new(Mutex::new(None::<String>));
        let sink = gpu_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            let mut slot = lock(&sink);
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));

        let param_align = u64::from(limits.min_storage_buffer_offset_alignment).max(16);
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad params arena"),
            size: ARENA_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let tuning = Tuning::load(&summary.name, &summary.driver);
        let subgroup_size = (device.features().contains(wgpu::Features::SUBGROUP)
            && adapter_info.subgroup_min_size == adapter_info.subgroup_max_size)
            .then_some(adapter_info.subgroup_max_size);
        let info = DeviceInfo {
            adapter: summary,
            limits,
            features: device.features(),
            subgroup_size,
            wide_storage: wide,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool: Arc::new(Pool::new(device.clone(), max_binding)),
                device,
                queue,
                info,
                arena,
                param_align,
                recording: Mutex::new(Recording {
                    encoder: None,
                    pass: None,
                    params: Vec::new(),
                    dispatches: 0,
                }),
                bind_groups: Mutex::new(HashMap::new()),
                caches: Mutex::new(Caches {
                    modules: HashMap::new(),
                    generated: HashMap::new(),
                    layouts: HashMap::new(),
                    pipelines: HashMap::new(),
                }),
                gpu_error,
                total_dispatches: 0.into(),
                total_bind_groups: 0.into(),
                profile: Mutex::new(None),
                timer: Mutex::new(None),
                tuning,
                wide: wide.into(),
                fusion: true.into(),
                fused: Mutex::new(None),
            }),
        })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.inner.info
    }

    /// Turns the wide kernels (eight f32 per storage access, `shaders/wide.wgsl`) on or off; the
    /// vec4 kernels run instead while they are off. Both give the same bits; this is for comparing
    /// them (`wgrad bench`, tests). Returns whether they are on now: never on a device without
    /// `DeviceInfo::wide_storage`.
    pub fn set_wide_storage(&self, on: bool) -> bool {
        let on = on && self.inner.info.wide_storage;
        self.inner
            .wide
            .store(on, std::sync::atomic::Ordering::Relaxed);
        on
    }

    /// Whether the wide kernels are in use.
    pub fn wide_storage(&self) -> bool {
        self.inner.wide.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes live, bytes pooled for reuse, and the peak of live bytes.
    pub fn memory_stats(&self) -> MemoryStats {
        self.inner.pool.stats()
    }

    /// Releases every pooled (free) buffer back to the driver (and the kept bind groups, which
    /// hold their buffers).
    pub fn trim_pool(&self) {
        lock(&self.inner.bind_groups).clear();
        self.inner.pool.trim();
    }

    /// Number of kernel dispatches recorded since the device was created.
    pub fn dispatch_count(&self) -> u64 {
        self.inner
            .total_dispatches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of bind groups created since the device was created: a dispatch on the same buffers
    /// (by slot) and kernel layout as an earlier one reuses that one's.
    pub fn bind_group_count(&self) -> u64 {
        self.inner
            .total_bind_groups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the per-kernel profiler on (clearing earlier totals) or off. While it is on, every
    /// dispatch is submitted and waited for on its own and its wall time (including one submit and
    /// wait, some tens of µs) is added to its kernel's total: slower overall, but it shows where a
    /// step's time goes.
    pub fn set_profiling(&self, on: bool) {
        *lock(&self.inner.profile) = on.then(HashMap::new);
    }

    /// Whether the per-kernel profiler is on.
    pub fn is_profiling(&self) -> bool {
        lock(&self.inner.profile).is_some()
    }

    /// The profiler's totals so far, largest first (empty when profiling is off).
    pub fn profile(&self) -> Vec<KernelTime> {
        let mut v: Vec<KernelTime> = lock(&self.inner.profile)
            .as_ref()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        v
    }

    /// Starts the GPU timer: from now on every compute pass records timestamps at its start and
    /// end. Returns false (and times nothing) where the adapter lacks `TIMESTAMP_QUERY`.
    pub fn start_gpu_timer(&self) -> Result<bool> {
        if !self
            .inner
            .info
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Ok(false);
        }
        self.flush()?; // work recorded before now is not timed
        let device = &self.inner.device;
        let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("wgrad timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * TIMER_PASSES,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad timer resolve"),
            size: 16 * u64::from(TIMER_PASSES),
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        *lock(&self.inner.timer) = Some(GpuTimer {
            queries,
            resolve,
            passes: 0,
            overflow: false,
        });
        Ok(true)
    }

    /// Stops the GPU timer, waits for the timed work and returns the milliseconds the GPU spent in
    /// the timed passes (summed), or None when the timer was not running or ran out of queries.
    pub fn stop_gpu_timer(&self) -> Result<Option<f64>> {
        self.flush()?; // ends the open pass, so its end timestamp is written
        let Some(t) = lock(&self.inner.timer).take() else {
            return Ok(None);
        };
        if t.overflow || t.passes == 0 {
            self.wait()?;
            return Ok((t.passes == 0).then_some(0.0));
        }
        let bytes = 16 * u64::from(t.passes);
        let staging = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad timer readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.new_encoder();
        encoder.resolve_query_set(&t.queries, 0..2 * t.passes, &t.resolve, 0);
        encoder.copy_buffer_to_buffer(&t.resolve, 0, &staging, 0, bytes);
        self.inner.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(DeviceError::Readback(e.to_string())),
            None => return Err(DeviceError::Readback("map callback never ran".into())),
        }
        let ticks: Vec<u64> = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| DeviceError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, u64>(&view).to_vec()
        };
        let period_ns = f64::from(self.inner.queue.get_timestamp_period());
        let total: u64 = ticks
            .chunks_exact(2)
            .map(|p| p[1].saturating_sub(p[0]))
            .sum();
        Ok(Some(total as f64 * period_ns / 1e6))
    }

    /// True when both handles share the same underlying device.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The measured choice of entry point of `kernel` for a shape class, if one was recorded.
    pub fn tuned_variant(&self, kernel: Kernel, class: ShapeClass) -> Option<String> {
        self.inner.tuning.get(kernel.name(), class)
    }

    /// Records the entry point of `kernel` to use for a shape class (until the device drops;
    /// `save_tuning` keeps it).
    pub fn set_tuned_variant(&self, kernel: Kernel, class: ShapeClass, entry: &str) {
        self.inner.tuning.set(kernel.name(), class, entry);
    }

    /// Writes this device's recorded choices to the tuning file (see `tuning_path`).
    pub fn save_tuning(&self) -> Result<std::path::PathBuf> {
        self.inner.tuning.save()
    }

    /// Submits all recorded work and waits for the GPU to finish it.
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    pub(crate) fn wgpu(&self) -> &wgpu::Device {
        &self.inner.device
    }

    pub(crate) fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Largest buffer a single storage binding may cover on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        self.inner
            .info
            .limits
            .max_storage_buffer_binding_size
            .min(self.inner.info.limits.max_buffer_size)
    }

    fn take_gpu_error(&self) -> Result<()> {
        match lock(&self.inner.gpu_error).take() {
            Some(msg) => Err(DeviceError::Gpu(msg)),
            None => Ok(()),
        }
    }

    pub(crate) fn wait(&self) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| DeviceError::Gpu(e.to_string()))?;
        self.take_gpu_error()
    }

    /// Submits the open encoder (if any) after uploading the arena's parameters.
    pub(crate) fn flush(&self) -> Result<()> {
        self.emit_fused()?;
        let mut rec = lock(&self.inner.recording);
        self.submit_locked(&mut rec, None);
        drop(rec);
        self.take_gpu_error()
    }

    fn submit_locked(
        &self,
        rec: &mut Recording,
        extra: Option<&dyn Fn(&mut wgpu::CommandEncoder)>,
    ) {
        rec.pass = None; // ends the pass; the encoder is usable again
        let mut encoder = rec.encoder.take();
        if let Some(extra) = extra {
            let enc = encoder.get_or_insert_with(|| self.new_encoder());
            extra(enc);
        }
        let Some(encoder) = encoder else { return };
        if !rec.params.is_empty() {
            // Written before this submission's commands run, after every earlier submission.
            self.inner
                .queue
                .write_buffer(&self.inner.arena, 0, &rec.params);
            rec.params.clear();
        }
        rec.dispatches = 0;
        self.inner.queue.submit([encoder.finish()]);
    }

    fn new_encoder(&self) -> wgpu::CommandEncoder {
        self.inner
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrad"),
            })
    }

    /// Submits recorded work plus a final copy (used by readback).
    pub(crate) fn submit_with(&self, extra: &dyn Fn(&mut wgpu::CommandEncoder)) -> Result<()> {
        self.emit_fused()?;
        let mut rec = lock(&self.inner.recording);
        self.submit_locked(&mut rec, Some(extra));
        drop(rec);
        self.take_gpu_error()
    }

    /// Folds `total` workgroups into an (x, y, z) grid within the per-dimension limit.
    /// Kernels recover the linear index as `wid.x + nwg.x * (wid.y + nwg.y * wid.z)`.
    pub(crate) fn fold(&self, total: u64) -> Result<[u32; 3]> {
        let lim = u64::from(self.inner.info.limits.max_compute_workgroups_per_dimension).max(1);
        let x = total.clamp(1, lim);
        let rest = total.div_ceil(x);
        let y = rest.clamp(1, lim);
        let z = rest.div_ceil(y).max(1);
        if z > lim {
            return Err(DeviceError::InvalidArgument {
                op: "dispatch",
                reason: format!("{total} workgroups exceed the device's 3-D dispatch limit"),
            });
        }
        Ok([x as u32, y as u32, z as u32])
    }

    fn module(&self, caches: &mut Caches, kernel: Kernel) -> Result<Arc<wgpu::ShaderModule>> {
        if let Some(m) = caches.modules.get(&kernel) {
            return Ok(m.clone());
        }
        let scope = self
            .inner
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .inner
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.name()),
                source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(DeviceError::Shader {
                kernel: kernel.name().into(),
                message: e.to_string(),
            });
        }
        let module = Arc::new(module);
        caches.modules.insert(kernel, module.clone());
        Ok(module)
    }

    fn layout(
        &self,
        caches: &mut Caches,
        key: &LayoutKey,
    ) -> (Arc<wgpu::BindGroupLayout>, Arc<wgpu::PipelineLayout>) {
        if let Some(l) = caches.layouts.get(key) {
            return l.clone();
        }
        let storage = |read_only, has_dynamic_offset| wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset,
            min_binding_size: None,
        };
        // Binding 0, the parameters, at a dynamic offset in the arena (see `record`).
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: storage(true, true),
            count: None,
        }];
        entries.extend(
            key.iter()
                .map(|&(slot, access)| wgpu::BindGroupLayoutEntry {
                    binding: slot,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: storage(access == Access::Read, false),
                    count: None,
                }),
        );
        let bgl = self
            .inner
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgrad"),
                entries: &entries,
            });
        let pl = self
            .inner
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("wgrad"),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        let l = (Arc::new(bgl), Arc::new(pl));
        caches.layouts.insert(key.clone(), l.clone());
        l
    }

    fn pipeline(
        &self,
        kernel: Kernel,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        layout_key: &LayoutKey,
    ) -> Result<(Arc<wgpu::ComputePipeline>, Arc<wgpu::BindGroupLayout>)> {
        let mut caches = lock(&self.inner.caches);
        let consts: Vec<(&'static str, u64)> =
            constants.iter().map(|&(k, v)| (k, v.to_bits())).collect();
        let key = ((kernel, entry, consts), layout_key.clone());
        let (bgl, pl) = self.layout(&mut caches, layout_key);
        if let Some(p) = caches.pipelines.get(&key) {
            return Ok((p.clone(), bgl));
        }
        let module = self.module(&mut caches, kernel)?;
        let scope = self
            .inner
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline =
            self.inner
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(DeviceError::Shader {
                kernel: format!("{}::{entry}", kernel.name()),
                message: e.to_string(),
            });
        }
        let pipeline = Arc::new(pipeline);
        caches.pipelines.insert(key, pipeline.clone());
        Ok((pipeline, bgl))
    }

    /// The pipeline of a generated kernel (entry point `fused`), compiled once per `signature`
    /// (a short text that determines the source; `source` builds it on a miss only, since a
    /// program's WGSL is tens of kilobytes).
    fn generated_pipeline(
        &self,
        signature: &str,
        source: &dyn Fn() -> String,
        layout_key: &LayoutKey,
    ) -> Result<(Arc<wgpu::ComputePipeline>, Arc<wgpu::BindGroupLayout>)> {
        let mut caches = lock(&self.inner.caches);
        let (bgl, pl) = self.layout(&mut caches, layout_key);
        let key = (signature.to_string(), layout_key.clone());
        if let Some(p) = caches.generated.get(&key) {
            return Ok((p.clone(), bgl));
        }
        let source = source();
        let device = &self.inner.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("fused"),
            source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("fused"),
            layout: Some(&pl),
            module: &module,
            entry_point: Some("fused"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(DeviceError::Shader {
                kernel: "fused (generated)".into(),
                message: e.to_string(),
            });
        }
        let pipeline = Arc::new(pipeline);
        caches.generated.insert(key, pipeline.clone());
        Ok((pipeline, bgl))
    }

    /// Records one dispatch of `kernel::entry` over `workgroups` (a linear count, folded here),
    /// after the pending fused program.
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &self,
        kernel: Kernel,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        params: &P,
        bindings: &[Binding<'_>],
        workgroups: u64,
    ) -> Result<()> {
        self.emit_fused()?;
        if workgroups == 0 {
            return Ok(());
        }
        let grid = self.fold(workgroups)?;
        let layout_key: LayoutKey = bindings.iter().map(|b| (b.slot, b.access)).collect();
        let (pipeline, bgl) = self.pipeline(kernel, entry, constants, &layout_key)?;
        let name = || format!("{}/{entry}", kernel.name());
        self.run(
            name,
            &pipeline,
            &bgl,
            grid,
            bytemuck::bytes_of(params),
            bindings,
        )
    }

    /// Records one dispatch of a generated kernel (entry point `fused`, see `kernels::fused`):
    /// the one of `signature`, built by `source` the first time.
    pub(crate) fn dispatch_generated(
        &self,
        (signature, source): (&str, &dyn Fn() -> String),
        params: &[u8],
        bindings: &[Binding<'_>],
        workgroups: u64,
    ) -> Result<()> {
        if workgroups == 0 {
            return Ok(());
        }
        let grid = self.fold(workgroups)?;
        let layout_key: LayoutKey = bindings.iter().map(|b| (b.slot, b.access)).collect();
        let (pipeline, bgl) = self.generated_pipeline(signature, source, &layout_key)?;
        self.run(|| "fused".into(), &pipeline, &bgl, grid, params, bindings)
    }

    /// Records a dispatch; while profiling, on its own and timed under `name`.
    fn run(
        &self,
        name: impl FnOnce() -> String,
        pipeline: &wgpu::ComputePipeline,
        bgl: &wgpu::BindGroupLayout,
        grid: [u32; 3],
        params: &[u8],
        bindings: &[Binding<'_>],
    ) -> Result<()> {
        let profiling = lock(&self.inner.profile).is_some();
        if !profiling {
            return self.record(pipeline, bgl, grid, params, bindings);
        }
        self.synchronize()?;
        let start = std::time::Instant::now();
        self.record(pipeline, bgl, grid, params, bindings)?;
        self.synchronize()?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let name = name();
        if let Some(totals) = lock(&self.inner.profile).as_mut() {
            let t = totals.entry(name.clone()).or_insert_with(|| KernelTime {
                name,
                ..KernelTime::default()
            });
            t.calls += 1;
            t.ms += ms;
        }
        Ok(())
    }

    /// Turns element-wise fusion on (the default) or off (emitting what is pending). See
    /// `kernels::fused`: with it on, unary ops and binary ops on operands of one shape are gathered
    /// into one kernel per run of them, and intermediates nobody holds are never written.
    pub fn set_fusion(&self, on: bool) -> Result<()> {
        self.inner
            .fusion
            .store(on, std::sync::atomic::Ordering::Relaxed);
        if on { Ok(()) } else { self.emit_fused() }
    }

    /// Whether element-wise fusion is on.
    pub fn fusion(&self) -> bool {
        self.inner.fusion.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records the pending fused program, if any. Another thread's flush waits on the lock until
    /// the program is recorded, so it cannot submit without it.
    fn emit_fused(&self) -> Result<()> {
        if EMITTING.get() {
            return Ok(()); // called by the emission's own dispatch
        }
        self.emit_locked(&mut lock(&self.inner.fused))
    }

    fn emit_locked(&self, pending: &mut Option<Program>) -> Result<()> {
        let Some(prog) = pending.take() else {
            return Ok(());
        };
        struct Emitting;
        impl Drop for Emitting {
            fn drop(&mut self) {
                EMITTING.set(false);
            }
        }
        EMITTING.set(true);
        let _reset = Emitting;
        fused::emit(self, prog)
    }

    /// Adds an op of `steps` steps over `n` elements reading `ins` to the pending program (emitting
    /// it first when full); false, with nothing done, when fusion is off or there is nothing to do.
    fn fuse(
        &self,
        n: usize,
        ins: &[&Arc<PooledBuffer>],
        steps: usize,
        add: impl FnOnce(&mut Program),
    ) -> Result<bool> {
        if n == 0 || !self.fusion() {
            return Ok(false);
        }
        let cap = self.inner.info.limits.max_storage_buffers_per_shader_stage as usize;
        let mut pending = lock(&self.inner.fused);
        if pending
            .as_ref()
            .is_some_and(|p| !fused::room(p, n, ins, steps, cap))
        {
            self.emit_locked(&mut pending)?;
        }
        add(pending.get_or_insert_with(|| Program::new(n)));
        Ok(true)
    }

    /// y = op(x) over `n` elements into the pending program; false when not fused.
    pub(crate) fn fuse_unary(
        &self,
        x: &Arc<PooledBuffer>,
        y: &Arc<PooledBuffer>,
        n: usize,
        op: UnaryOp,
    ) -> Result<bool> {
        self.fuse(n, &[x], 1, |p| p.unary(x, y, op))
    }

    /// y = post(op(a, b)) over `n` elements (operands of one shape) into the pending program;
    /// false when not fused.
    pub(crate) fn fuse_binary(
        &self,
        a: &Arc<PooledBuffer>,
        b: &Arc<PooledBuffer>,
        y: &Arc<PooledBuffer>,
        n: usize,
        op: BinaryOp,
        post: &[UnaryOp],
    ) -> Result<bool> {
        self.fuse(n, &[a, b], 1 + post.len(), |p| {
            p.binary((a, b, y), op, post)
        })
    }

    /// Records one dispatch of `pipeline` into the open compute pass.
    fn record(
        &self,
        pipeline: &wgpu::ComputePipeline,
        bgl: &wgpu::BindGroupLayout,
        grid: [u32; 3],
        bytes: &[u8],
        bindings: &[Binding<'_>],
    ) -> Result<()> {
        let mut rec = lock(&self.inner.recording);
        let offset = (rec.params.len() as u64).next_multiple_of(self.inner.param_align);
        if offset + bytes.len() as u64 > ARENA_BYTES {
            self.submit_locked(&mut rec, None);
        }
        let offset = (rec.params.len() as u64).next_multiple_of(self.inner.param_align);
        rec.params.resize(offset as usize, 0);
        rec.params.extend_from_slice(bytes);

        let bind_group = self.bind_group(bgl, bytes.len() as u64, bindings);
        if rec.pass.is_none() {
            let mut encoder = rec.encoder.take().unwrap_or_else(|| self.new_encoder());
            let mut timer = lock(&self.inner.timer);
            let timestamp_writes = timer.as_mut().and_then(|t| {
                if t.passes == TIMER_PASSES {
                    t.overflow = true;
                    return None;
                }
                t.passes += 1;
                Some(wgpu::ComputePassTimestampWrites {
                    query_set: &t.queries,
                    beginning_of_pass_write_index: Some(2 * t.passes - 2),
                    end_of_pass_write_index: Some(2 * t.passes - 1),
                })
            });
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgrad"),
                    timestamp_writes,
                })
                .forget_lifetime();
            drop(timer);
            rec.encoder = Some(encoder);
            rec.pass = Some(pass);
        }
        if let Some(pass) = rec.pass.as_mut() {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[offset as u32]);
            pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        }
        rec.dispatches += 1;
        self.inner
            .total_dispatches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The bind group of `bindings` under `bgl`, with the first `params` bytes of the arena at
    /// binding 0 (moved to a dispatch's parameters by its dynamic offset): the one made for the
    /// same buffers before, else a new one, kept.
    fn bind_group(
        &self,
        bgl: &wgpu::BindGroupLayout,
        params: u64,
        bindings: &[Binding<'_>],
    ) -> wgpu::BindGroup {
        let key: BindKey = (
            bgl.clone(),
            params,
            bindings
                .iter()
                .map(|b| (b.slot, b.buffer.raw().clone()))
                .collect(),
        );
        let mut kept = lock(&self.inner.bind_groups);
        if let Some(bg) = kept.get(&key) {
            return bg.clone();
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.inner.arena,
                offset: 0,
                size: wgpu::BufferSize::new(params),
            }),
        }];
        entries.extend(bindings.iter().map(|b| wgpu::BindGroupEntry {
            binding: b.slot,
            resource: b.buffer.raw().as_entire_binding(),
        }));
        let bg = self
            .inner
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: bgl,
                entries: &entries,
            });
        self.inner
            .total_bind_groups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if kept.len() >= BIND_GROUPS_KEPT {
            kept.clear();
        }
        kept.insert(key, bg.clone());
        bg
    }

    /// Hands out a storage buffer of at least `bytes` bytes from the pool.
    pub(crate) fn alloc(&self, bytes: u64) -> Arc<PooledBuffer> {
        Arc::new(self.inner.pool.take(bytes))
    }
}
