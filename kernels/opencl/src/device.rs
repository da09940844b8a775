//! One OpenCL device: context, in-order queue, and the programs built for it (cached per process).

use std::collections::HashMap;
use std::sync::Mutex;

use ocl::{Context, Device, Platform, Program, Queue};
use serrano_kernel_core::{KernelError, Result};

pub struct ClDevice {
    context: Context,
    queue: Queue,
    device: Device,
    description: String,
    programs: Mutex<HashMap<&'static str, Program>>,
}

impl std::fmt::Debug for ClDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClDevice")
            .field("device", &self.description)
            .finish()
    }
}

pub(crate) fn cl_err(what: &str) -> impl Fn(ocl::Error) -> KernelError + '_ {
    move |e| KernelError::Device(format!("OpenCL {what}: {e}"))
}

impl ClDevice {
    /// The first device of the first platform that has one (GPUs preferred), or why none.
    pub fn probe() -> Result<ClDevice> {
        // pocl crashes when two threads set up platforms at once: one probe at a time.
        static PROBING: Mutex<()> = Mutex::new(());
        let _guard = PROBING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // `Platform::list()` panics without an ICD loader/driver; the core call returns an error.
        let ids = ocl::core::get_platform_ids()
            .map_err(|e| KernelError::Device(format!("no OpenCL platform: {e}")))?;
        if ids.is_empty() {
            return Err(KernelError::Device("no OpenCL platform installed".into()));
        }
        let platforms: Vec<Platform> = ids.into_iter().map(Platform::new).collect();
        let mut chosen: Option<(Platform, Device)> = None;
        for want_gpu in [true, false] {
            for platform in &platforms {
                let flag = if want_gpu {
                    Some(ocl::flags::DEVICE_TYPE_GPU)
                } else {
                    None
                };
                if let Ok(devices) = Device::list(platform, flag)
                    && let Some(d) = devices.into_iter().next()
                {
                    chosen = Some((*platform, d));
                    break;
                }
            }
            if chosen.is_some() {
                break;
            }
        }
        let (platform, device) =
            chosen.ok_or_else(|| KernelError::Device("no OpenCL device found".into()))?;
        let context = Context::builder()
            .platform(platform)
            .devices(device)
            .build()
            .map_err(cl_err("context"))?;
        let queue = Queue::new(&context, device, None).map_err(cl_err("queue"))?;
        let name = device.name().unwrap_or_else(|_| "OpenCL device".into());
        let pname = platform.name().unwrap_or_else(|_| "OpenCL".into());
        Ok(ClDevice {
            context,
            queue,
            device,
            description: format!("{name} ({pname})"),
            programs: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the device is a GPU (a CPU runtime such as pocl is not).
    pub fn is_gpu(&self) -> bool {
        matches!(
            self.device.info(ocl::enums::DeviceInfo::Type),
            Ok(ocl::enums::DeviceInfoResult::Type(t)) if t.contains(ocl::flags::DEVICE_TYPE_GPU)
        )
    }

    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn context(&self) -> &Context {
        &self.context
    }
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
    pub fn device(&self) -> Device {
        self.device
    }

    /// The program built from `src`, built on first use and cached.
    pub fn program(&self, name: &'static str, src: &str) -> Result<Program> {
        let mut programs = self
            .programs
            .lock()
            .map_err(|_| KernelError::Device("program cache poisoned".into()))?;
        if let Some(p) = programs.get(name) {
            return Ok(p.clone());
        }
        let program = Program::builder()
            .src(src)
            .devices(self.device)
            .cmplr_opt("-cl-std=CL1.2")
            .build(&self.context)
            .map_err(|e| KernelError::Device(format!("building {name}.cl: {e}")))?;
        programs.insert(name, program.clone());
        Ok(program)
    }
}
