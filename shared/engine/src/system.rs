//! What the process uses of the machine: resident memory (from `/proc`), and GPU memory
//! through NVML with the `gpu` feature (`nvml-wrapper` loads the driver's library at run time;
//! without a GPU, a driver or the feature there is simply no GPU, which is not an error).

/// Resident set size of this process in bytes (Linux); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // Every Linux this runs on (x86_64, aarch64 with 4 KiB pages) uses 4096.
    4096
}

#[cfg(feature = "gpu")]
fn nvml() -> Option<&'static nvml_wrapper::Nvml> {
    static NVML: std::sync::OnceLock<Option<nvml_wrapper::Nvml>> = std::sync::OnceLock::new();
    NVML.get_or_init(|| nvml_wrapper::Nvml::init().ok())
        .as_ref()
}

/// Built without the `gpu` feature: no GPU to see.
#[cfg(not(feature = "gpu"))]
pub fn gpu() -> Option<GpuInfo> {
    None
}

/// The first GPU: its name and (used, total) memory in bytes; `None` without one.
#[cfg(feature = "gpu")]
pub fn gpu() -> Option<GpuInfo> {
    let device = nvml()?.device_by_index(0).ok()?;
    let memory = device.memory_info().ok()?;
    Some(GpuInfo {
        name: device.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
        used_bytes: memory.used,
        total_bytes: memory.total,
        free_bytes: memory.free,
    })
}

#[derive(Debug, Clone)]
pub struct GpuInfo {
    pub name: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub free_bytes: u64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_some_resident_memory() {
        let rss = super::rss_bytes().unwrap_or(0);
        assert!(rss > 1 << 20, "{rss}");
    }
}
