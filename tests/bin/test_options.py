"""The option groups tools share (sasv.bin.options): every documented choice of the model stages parses,
defaults are the engine's."""

from __future__ import annotations

import pytest

from sasv.bin.options import model_stage_parser
from sasv.extraction.chunks import DEFAULT_CHUNK_SIZE
from sasv.extraction.engines import AUTOCAST_DTYPES
from sasv.runtime.cpu_kernels import CPU_KERNELS


@pytest.mark.parametrize("kind", ["asv", "cm"])
def test_every_documented_choice_parses(kind: str) -> None:
    p = model_stage_parser(kind, "t", "")
    base = ["--conf", "c.yaml", "--data_dirs", "d"]
    for kernels in CPU_KERNELS:
        assert p.parse_args([*base, "--cpu_kernels", kernels]).cpu_kernels == kernels
    args = p.parse_args([*base, "--allow-random-init", "true", "--model_batch", "3"])
    assert args.allow_random_init is True and args.model_batch == 3 and args.chunk_size == DEFAULT_CHUNK_SIZE
    assert args.num_workers is None and args.nj == 1
    if kind == "asv":
        for autocast in AUTOCAST_DTYPES:
            assert p.parse_args([*base, "--autocast", autocast]).autocast == autocast
    else:
        with pytest.raises(SystemExit):
            p.parse_args([*base, "--autocast", "bf16"])
    bads = (["--nj", "0"], ["--model_batch", "0"], ["--allow_random_init"], ["--threads", "-1"],
            ["--num_workers", "-2"], ["--chunk_size", "0"])  # fmt: skip
    for bad in bads:
        with pytest.raises(SystemExit):
            p.parse_args([*base, *bad])


@pytest.mark.parametrize("kind", ["asv", "cm"])
def test_compile_reaches_the_engine_options(kind: str, monkeypatch) -> None:
    import sasv.bin.options as options_module

    seen = []
    monkeypatch.setattr(
        options_module, "run_model_stage", lambda kind, conf, dirs, exp, options, *rest: seen.append(options)
    )
    base = ["--conf", "c.yaml", "--data_dirs", "d"]
    assert options_module.model_stage_main(kind, "t", "", base) == 0
    assert options_module.model_stage_main(kind, "t", "", [*base, "--compile", "true"]) == 0
    assert [options.compile for options in seen] == [False, True]
