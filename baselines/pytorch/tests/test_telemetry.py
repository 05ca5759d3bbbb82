"""Telemetry with iol's semantics: summaries of hand-made samples, the energy section, and the
sampler thread on a fake NVML module (nvidia-ml-py's function names)."""
import time
import types
import unittest

import fakes  # noqa: F401
from iol_baseline import telemetry


class Summary(unittest.TestCase):
    def test_counter_integral_means_peaks(self):
        samples = [{"t": 0.0, "power_w": 100.0, "memory_used": 1.0e9, "gpu_util": 0.0, "mem_util": 0.0,
                    "sm_clock": 1000.0, "temperature": 40.0},
                   {"t": 1.0, "power_w": 300.0, "memory_used": 3.0e9, "gpu_util": 100.0, "mem_util": 50.0,
                    "sm_clock": 2000.0, "temperature": 60.0},
                   {"t": 3.0, "power_w": 200.0, "memory_used": 2.0e9, "gpu_util": 50.0, "mem_util": 25.0,
                    "sm_clock": None, "temperature": 50.0}]
        s = telemetry.summarize_samples(samples, 3.0, 5000.0, 5750.0)
        self.assertEqual(s["energy_counter_j"], 750.0)
        self.assertEqual(s["energy_integrated_j"], 0.5 * (100 + 300) * 1 + 0.5 * (300 + 200) * 2)  # 700 J
        self.assertEqual(s["mean_power_w"], 200.0)
        self.assertEqual(s["peak_power_w"], 300.0)
        self.assertEqual(s["peak_memory_used_bytes"], 3.0e9)
        self.assertEqual(s["mean_gpu_utilization"], 50.0)
        self.assertEqual(s["mean_memory_utilization"], 25.0)
        self.assertEqual(s["mean_sm_clock_mhz"], 1500.0)   # unread values are skipped, not zero
        self.assertEqual(s["max_temperature_c"], 60.0)
        self.assertEqual((s["available"], s["reason"], s["num_samples"]), (True, None, 3))
        self.assertEqual(tuple(s), telemetry.TELEMETRY_KEYS)

    def test_no_counter_no_power(self):
        s = telemetry.summarize_samples([{"t": 0.0}, {"t": 1.0}], 1.0, None, 10.0)
        self.assertIsNone(s["energy_counter_j"])
        self.assertIsNone(s["energy_integrated_j"])
        self.assertIsNone(s["mean_power_w"])

    def test_unavailable(self):
        s = telemetry.unavailable("no driver")
        self.assertEqual((s["available"], s["reason"], s["num_samples"], s["duration_s"]), (False, "no driver", 0, 0.0))
        self.assertIsNone(s["energy_counter_j"])

    def test_energy_section(self):
        s = {"energy_counter_j": 100.0, "energy_integrated_j": 90.0, "mean_power_w": 250.0}
        self.assertEqual(telemetry.energy_section(s, 50, 500.0),
                         {"energy_j": 100.0, "source": "counter", "j_per_output_token": 2.0,
                          "output_tokens_per_s_per_w": 2.0})
        s = {"energy_counter_j": None, "energy_integrated_j": 90.0, "mean_power_w": None}
        e = telemetry.energy_section(s, 0, 0.0)
        self.assertEqual((e["energy_j"], e["source"], e["j_per_output_token"], e["output_tokens_per_s_per_w"]),
                         (90.0, "power_integration", None, None))
        self.assertEqual(telemetry.energy_section(telemetry.unavailable("x"), 10, 1.0)["source"], "none")


def fake_nvml(energy_mj=(1_000_000, 1_250_000), fail_init=False):
    state = {"energy": list(energy_mj)}

    def init():
        if fail_init:
            raise RuntimeError("NVML_ERROR_DRIVER_NOT_LOADED")

    def energy(handle):
        return state["energy"].pop(0) if len(state["energy"]) > 1 else state["energy"][0]

    return types.SimpleNamespace(
        NVML_CLOCK_SM=1, NVML_TEMPERATURE_GPU=0, nvmlInit=init, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: "gpu0", nvmlDeviceGetHandleByUUID=lambda u: "gpu-by-uuid",
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3", nvmlSystemGetDriverVersion=lambda: "580.159.04",
        nvmlSystemGetCudaDriverVersion_v2=lambda: 13000,
        nvmlDeviceGetPowerUsage=lambda h: 250_000,
        nvmlDeviceGetTotalEnergyConsumption=energy,
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=85520809984, used=4 << 30, free=0),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=90, memory=40),
        nvmlDeviceGetClockInfo=lambda h, kind: 1980,
        nvmlDeviceGetTemperature=lambda h, kind: 45)


class Sampler(unittest.TestCase):
    def test_samples_at_about_20_hz_with_the_counter(self):
        sampler = telemetry.NvmlSampler(nvml=fake_nvml())
        self.assertTrue(sampler.available)
        self.assertEqual(sampler.gpu_info(), {"name": "NVIDIA H100 80GB HBM3", "driver_version": "580.159.04",
                                              "memory_total_bytes": 85520809984})
        self.assertEqual(sampler.cuda_driver_version(), "13.0")
        sampler.start()
        time.sleep(0.3)
        s = sampler.stop()
        sampler.close()
        self.assertTrue(s["available"])
        self.assertGreaterEqual(s["num_samples"], 3)      # ~6 at 20 Hz, plus the one at stop()
        self.assertLessEqual(s["num_samples"], 12)
        self.assertAlmostEqual(s["energy_counter_j"], 250.0)
        self.assertEqual((s["mean_power_w"], s["peak_memory_used_bytes"], s["max_temperature_c"]), (250.0, 4 << 30, 45.0))
        # Trapezoids from the first sample (t ~ 0, as iol) to the one at stop().
        self.assertAlmostEqual(s["energy_integrated_j"], 250.0 * s["duration_s"], delta=250.0 * 0.02)

    def test_by_uuid(self):
        nvml = fake_nvml()
        sampler = telemetry.NvmlSampler(nvml=nvml, device_uuid="GPU-1234")
        self.assertEqual(sampler.device, "gpu-by-uuid")

    def test_no_driver_gives_a_reason(self):
        sampler = telemetry.NvmlSampler(nvml=fake_nvml(fail_init=True))
        self.assertFalse(sampler.available)
        sampler.start()
        s = sampler.stop()
        self.assertFalse(s["available"])
        self.assertIn("nvmlInit failed", s["reason"])
        self.assertIsNone(sampler.gpu_info())


if __name__ == "__main__":
    unittest.main()
