"""GPU telemetry through NVML (nvidia-ml-py's `pynvml`), with iol's semantics (src/iol/bench/nvml_sampler.cpp).

A thread samples power, memory used, GPU and memory utilization, SM clock and temperature at
20 Hz; run energy is the difference of the total-energy counter between start() and stop(), with
the trapezoidal integral of the power samples beside it (used when the counter is missing); one
last sample is taken at stop(). Without pynvml, a driver or a device, every field is null and
`reason` says why -- never a crash. summarize_samples() is the pure part, tested on handmade samples.
"""
import threading
import time

SAMPLE_HZ = 20.0  # iol's NvmlSampler default

TELEMETRY_KEYS = ("available", "reason", "num_samples", "duration_s", "energy_counter_j", "energy_integrated_j",
                  "mean_power_w", "peak_power_w", "peak_memory_used_bytes", "mean_gpu_utilization",
                  "mean_memory_utilization", "mean_sm_clock_mhz", "max_temperature_c")
SAMPLE_FIELDS = ("power_w", "memory_used", "gpu_util", "mem_util", "sm_clock", "temperature")


def unavailable(reason):
    summary = {k: None for k in TELEMETRY_KEYS}
    summary.update(available=False, reason=reason, num_samples=0, duration_s=0.0)
    return summary


def summarize_samples(samples, duration_s, energy_start_j, energy_end_j):
    """samples: dicts with "t" (seconds from start) and SAMPLE_FIELDS (None when unread)."""
    def values(key):
        return [s[key] for s in samples if s.get(key) is not None]

    def mean_of(key):
        v = values(key)
        return sum(v) / len(v) if v else None

    def max_of(key):
        v = values(key)
        return max(v) if v else None

    integral, have_power = 0.0, False
    for a, b in zip(samples, samples[1:]):
        if a.get("power_w") is not None and b.get("power_w") is not None:
            integral += 0.5 * (a["power_w"] + b["power_w"]) * (b["t"] - a["t"])
            have_power = True
    counter = energy_end_j - energy_start_j if energy_start_j is not None and energy_end_j is not None else None
    return {"available": True, "reason": None, "num_samples": len(samples), "duration_s": duration_s,
            "energy_counter_j": counter, "energy_integrated_j": integral if have_power else None,
            "mean_power_w": mean_of("power_w"), "peak_power_w": max_of("power_w"),
            "peak_memory_used_bytes": max_of("memory_used"), "mean_gpu_utilization": mean_of("gpu_util"),
            "mean_memory_utilization": mean_of("mem_util"), "mean_sm_clock_mhz": mean_of("sm_clock"),
            "max_temperature_c": max_of("temperature")}


def energy_section(telemetry, total_output_tokens, output_throughput):
    """The record's "energy" object, from a telemetry summary (iol's bench_command.cpp)."""
    counter, integrated = telemetry.get("energy_counter_j"), telemetry.get("energy_integrated_j")
    energy = counter if counter is not None else integrated
    source = "counter" if counter is not None else "power_integration" if integrated is not None else "none"
    mean_power = telemetry.get("mean_power_w")
    return {"energy_j": energy, "source": source,
            "j_per_output_token": energy / total_output_tokens if energy is not None and total_output_tokens > 0 else None,
            "output_tokens_per_s_per_w": output_throughput / mean_power if mean_power else None}


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlSampler:
    """start()/stop() around each run; stop() returns the telemetry summary (a record's "telemetry")."""

    def __init__(self, device_index=0, sample_hz=SAMPLE_HZ, nvml=None, device_uuid=None):
        self.period_s = 1.0 / sample_hz
        self.reason = ""
        self.device = None
        self.nvml = nvml
        self._thread = None
        self._running = False
        self._samples = []
        self._start = None
        self._energy_start = None
        self._lock = threading.Lock()
        if self.nvml is None:
            try:
                import pynvml  # nvidia-ml-py
            except ImportError:
                self.reason = "NVML not loaded: the nvidia-ml-py package (module pynvml) is not installed"
                return
            self.nvml = pynvml
        try:
            self.nvml.nvmlInit()
        except Exception as e:  # pynvml.NVMLError, or the library missing
            self.reason = f"nvmlInit failed (no driver?): {e}"
            return
        try:
            # The device torch runs on, by UUID (CUDA_VISIBLE_DEVICES renumbers); else by index as iol.
            if device_uuid:
                self.device = self.nvml.nvmlDeviceGetHandleByUUID(device_uuid)
            else:
                self.device = self.nvml.nvmlDeviceGetHandleByIndex(device_index)
        except Exception:
            try:
                self.device = self.nvml.nvmlDeviceGetHandleByIndex(device_index)
            except Exception:
                self.reason = f"no GPU at index {device_index}"
                self.nvml.nvmlShutdown()

    @property
    def available(self):
        return self.device is not None

    def _call(self, name, *args):
        try:
            return getattr(self.nvml, name)(*args)
        except Exception:
            return None

    def gpu_info(self):
        if not self.available:
            return None
        memory = self._call("nvmlDeviceGetMemoryInfo", self.device)
        name = self._call("nvmlDeviceGetName", self.device)
        driver = self._call("nvmlSystemGetDriverVersion")
        return {"name": _text(name) if name is not None else "", "driver_version": _text(driver) if driver is not None else "",
                "memory_total_bytes": int(memory.total) if memory is not None else 0}

    def cuda_driver_version(self):
        """The CUDA version the driver supports, e.g. "13.0"."""
        if not self.available:
            return None
        v = self._call("nvmlSystemGetCudaDriverVersion_v2") or self._call("nvmlSystemGetCudaDriverVersion")
        return f"{v // 1000}.{(v % 1000) // 10}" if isinstance(v, int) else None

    def _read_energy_j(self):
        millijoules = self._call("nvmlDeviceGetTotalEnergyConsumption", self.device)
        return millijoules / 1e3 if millijoules is not None else None

    def _read_sample(self, t):
        s = {"t": t}
        power = self._call("nvmlDeviceGetPowerUsage", self.device)  # milliwatts
        s["power_w"] = power / 1e3 if power is not None else None
        memory = self._call("nvmlDeviceGetMemoryInfo", self.device)
        s["memory_used"] = float(memory.used) if memory is not None else None
        util = self._call("nvmlDeviceGetUtilizationRates", self.device)
        s["gpu_util"] = float(util.gpu) if util is not None else None
        s["mem_util"] = float(util.memory) if util is not None else None
        clock = self._call("nvmlDeviceGetClockInfo", self.device, getattr(self.nvml, "NVML_CLOCK_SM", 1))
        s["sm_clock"] = float(clock) if clock is not None else None
        temp = self._call("nvmlDeviceGetTemperature", self.device, getattr(self.nvml, "NVML_TEMPERATURE_GPU", 0))
        s["temperature"] = float(temp) if temp is not None else None
        return s

    def _loop(self):
        next_time = time.perf_counter()
        while self._running:
            sample = self._read_sample(time.perf_counter() - self._start)
            with self._lock:
                self._samples.append(sample)
            next_time += self.period_s
            delay = next_time - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def start(self):
        if not self.available or self._running:
            return
        self._samples = []
        self._start = time.perf_counter()
        self._energy_start = self._read_energy_j()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()

    def stop(self):
        if not self.available:
            return unavailable(self.reason)
        if self._start is None:
            return unavailable("the sampler was not started")
        self._running = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        end = time.perf_counter() - self._start
        energy_end = self._read_energy_j()
        self._samples.append(self._read_sample(end))
        return summarize_samples(self._samples, end, self._energy_start, energy_end)

    def close(self):
        if self._running:
            self.stop()
        if self.available:
            self._call("nvmlShutdown")
            self.device = None
