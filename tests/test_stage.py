"""The model stages' options (sasv.stage): every documented choice parses, defaults are the engine's."""

from __future__ import annotations

import pytest

from sasv.chunked import DEFAULT_CHUNK_SIZE
from sasv.cpu_kernels import CPU_KERNELS
from sasv.engines import AUTOCAST_DTYPES
from sasv.stage import model_stage_parser


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
    import sasv.stage as stage

    seen = []
    monkeypatch.setattr(
        stage, "run_model_stage", lambda kind, conf, dirs, exp, options, *rest: seen.append(options)
    )
    base = ["--conf", "c.yaml", "--data_dirs", "d"]
    assert stage.stage_main(kind, "t", "", base) == 0
    assert stage.stage_main(kind, "t", "", [*base, "--compile", "true"]) == 0
    assert [options.compile for options in seen] == [False, True]
