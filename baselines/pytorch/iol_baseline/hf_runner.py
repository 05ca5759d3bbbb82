"""The transformers side: load the model in bf16 on CUDA with SDPA attention, run one static batch
through `model.generate`, and dump teacher-forced logits for the parity gate.

The only module that imports torch and transformers (run_baseline.py imports it after the flags and
the request file are checked). The two modes are what a careful transformers user runs:
  eager     generate() with the default dynamic cache (DynamicCache), greedy
  compiled  generate() with cache_implementation="static" and a CompileConfig(mode="reduce-overhead",
            fullgraph=True, dynamic=False): transformers' documented static-cache + torch.compile
            path, in which generate() compiles the decoding forward itself (CUDA graphs via
            reduce-overhead) and runs the prefill eagerly. Without CompileConfig (older
            transformers), model.forward is wrapped in torch.compile with the same options, as the
            transformers "Optimizing inference" guide shows.
Prompts are token ids, left-padded with pad_token_id 0 under an attention mask (transformers derives
the positions from the mask); every row is greedy; with ignore_eos, min_new_tokens = max_new_tokens
so EOS is masked until the batch's longest request is done.
"""
import gc
import importlib.metadata
import os
import platform
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, GenerationConfig

from . import BaselineError
from .timing import StepRecorder

try:
    from transformers import CompileConfig
except ImportError:  # transformers < 4.47
    CompileConfig = None

try:
    from transformers.generation.streamers import BaseStreamer
except ImportError:
    BaseStreamer = object


class TimingStreamer(StepRecorder, BaseStreamer):
    """transformers' streamer protocol (put per step, end) recording a clock reading per step."""

    def __init__(self, clock, origin):
        StepRecorder.__init__(self, clock, origin)


def require_cuda():
    if not torch.cuda.is_available():
        raise BaselineError(f"no CUDA GPU visible to torch (torch {torch.__version__}, built for CUDA "
                            f"{torch.version.cuda}); the baseline runs on an NVIDIA GPU only")


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class HfEngine:
    def __init__(self, model_dir, mode, compile_mode="reduce-overhead"):
        require_cuda()
        self.mode = mode
        self.compile_mode = compile_mode
        self.static_cache = mode == "compiled"
        transformers.logging.set_verbosity_error()  # generate()'s per-call notices would flood stderr
        start = time.perf_counter()
        kwargs = {"dtype": torch.bfloat16, "attn_implementation": "sdpa"}
        try:
            try:
                model = AutoModelForCausalLM.from_pretrained(model_dir, device_map="cuda", **kwargs)
            except OSError:
                raise  # missing or unreadable files: the retry would say the same
            except (ImportError, ValueError, TypeError):
                # device_map needs accelerate in some versions: load on the host, then move.
                model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).to("cuda")
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as e:
            raise BaselineError(f"{model_dir}: transformers could not load the model: "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        torch.cuda.synchronize()
        self.load_seconds = time.perf_counter() - start
        self.model = model.eval()
        self.vocab_size = int(model.config.vocab_size)
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = getattr(model.config, "eos_token_id", None)
        self.eos_token_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.num_parameters = sum(p.numel() for p in model.parameters())
        self.architecture = (getattr(model.config, "architectures", None) or [type(model).__name__])[0]
        self.max_model_len = getattr(model.config, "max_position_embeddings", None)
        if self.static_cache:
            self._prepare_compile()

    def _prepare_compile(self):
        # A batch sweep compiles one graph per batch size (and the last, partial batch): above
        # dynamo's default limit of 8 it would silently fall back to eager.
        config = torch._dynamo.config
        for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                     "accumulated_recompile_limit"):
            if hasattr(config, name):
                setattr(config, name, max(getattr(config, name), 256))
        if CompileConfig is None:
            self.model.forward = torch.compile(self.model.forward, mode=self.compile_mode, fullgraph=True, dynamic=False)

    def _generation_config(self, max_new_tokens, ignore_eos):
        kwargs = {"max_new_tokens": max_new_tokens, "min_new_tokens": max_new_tokens if ignore_eos else 0,
                  "do_sample": False, "num_beams": 1, "pad_token_id": 0,
                  "eos_token_id": self.eos_token_ids or None, "use_cache": True}
        if self.static_cache:
            kwargs["cache_implementation"] = "static"
            if CompileConfig is not None:
                kwargs["compile_config"] = CompileConfig(fullgraph=True, dynamic=False, mode=self.compile_mode)
        return GenerationConfig(**kwargs)

    def new_streamer(self, clock, origin):
        return TimingStreamer(clock, origin)

    def generate(self, prompts, max_new_tokens, ignore_eos, streamer, pad_prompts_to=None):
        """One static batch; pad_prompts_to: left-pad to at least this length (compiled mode's one
        cache length, driver.static_total_len)."""
        longest = max(max(len(p) for p in prompts), pad_prompts_to or 0)
        ids = [[0] * (longest - len(p)) + list(p) for p in prompts]
        mask = [[0] * (longest - len(p)) + [1] * len(p) for p in prompts]
        input_ids = torch.tensor(ids, dtype=torch.long, device="cuda")
        attention_mask = torch.tensor(mask, dtype=torch.long, device="cuda")
        self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                            generation_config=self._generation_config(max_new_tokens, ignore_eos), streamer=streamer)

    @staticmethod
    def is_out_of_memory(e):
        if isinstance(e, torch.cuda.OutOfMemoryError):
            return True
        text = str(e)
        return isinstance(e, RuntimeError) and ("out of memory" in text or "CUBLAS_STATUS_ALLOC_FAILED" in text)

    @staticmethod
    def recover():
        gc.collect()
        torch.cuda.empty_cache()

    @staticmethod
    def reset_peak_memory():
        torch.cuda.reset_peak_memory_stats()

    @staticmethod
    def memory_stats():
        return {"torch_max_memory_allocated_bytes": int(torch.cuda.max_memory_allocated()),
                "torch_max_memory_reserved_bytes": int(torch.cuda.max_memory_reserved())}

    def device_uuid(self):
        """The NVML UUID ("GPU-...") of the device torch runs on, or None."""
        try:
            uuid = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
        except Exception:
            return None
        return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"

    def gpu_from_torch(self):
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        return {"name": props.name, "driver_version": "", "memory_total_bytes": int(props.total_memory)}

    def versions(self):
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        return {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "cuda_runtime": torch.version.cuda,
                "cudnn": str(cudnn) if cudnn else None, "numpy": _package_version("numpy"),
                "nvidia_ml_py": _package_version("nvidia-ml-py")}

    def description(self):
        return (f"transformers {transformers.__version__} + torch {torch.__version__} (CUDA {torch.version.cuda}) "
                f"on {torch.cuda.get_device_name(torch.cuda.current_device())}, bf16, SDPA, "
                + ("dynamic cache, eager" if not self.static_cache else
                   f"static cache + torch.compile({self.compile_mode})"))

    def parity_logits(self, prompts, path):
        """Teacher-forced logits: one forward pass per prompt, the bf16 logits at every position cast
        to float32, written as little-endian [sum of prompt lengths][vocab]. Returns the vocab size."""
        vocab = None
        tmp = path + ".tmp"
        with open(tmp, "wb") as f, torch.no_grad():
            for prompt in prompts:
                ids = torch.tensor([list(prompt)], dtype=torch.long, device="cuda")
                logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float().cpu()
                vocab = logits.shape[-1]
                try:
                    f.write(logits.numpy().astype("<f4").tobytes())
                except (ImportError, RuntimeError):  # torch without numpy
                    from array import array
                    row = array("f", logits.flatten().tolist())
                    if sys.byteorder != "little":
                        row.byteswap()
                    f.write(row.tobytes())
        os.replace(tmp, path)
        return vocab
