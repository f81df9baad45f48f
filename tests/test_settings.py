"""Every numeric setting's range and every config-file value's type, checked before anything loads."""

from __future__ import annotations

import math
from typing import Optional, get_type_hints

import pytest

from mate_kd.config import MIN_SEQ_LENGTH, RANGES, RunArgs, parse_args
from mate_kd.errors import ConfigError

BASE = ["--model_name_or_path", "s", "--teacher_path", "t", "--generator_path", "g", "--task_name", "mnli",
        "--data_dir", "d", "--output_dir", "o"]
NOT_CHECKED = {"local_rank"}  # accepted for compatibility and ignored


def test_every_numeric_setting_has_a_range():
    numbers = (int, float, Optional[int], Optional[float])
    numeric = {name for name, hint in get_type_hints(RunArgs).items() if hint in numbers}
    assert numeric - NOT_CHECKED == set(RANGES), "a numeric setting without an entry in config.RANGES"


# setting -> (values accepted, values refused); the edges of each range
EDGES = {
    "max_seq_length": ([MIN_SEQ_LENGTH, 512], [MIN_SEQ_LENGTH - 1, 0, -1]),
    "max_train_samples": ([1], [0, -3]),
    "seed": ([0, 2 ** 32 - 1], [-1, 2 ** 32]),
    "per_device_train_batch_size": ([1], [0]),
    "per_device_eval_batch_size": ([1], [0]),
    "learning_rate": ([1e-9], [0.0, -1.0, math.inf, math.nan]),
    "weight_decay": ([0.0], [-0.01]),
    "adam_epsilon": ([1e-12], [0.0]),
    "max_grad_norm": ([0.1], [0.0, -5.0]),
    "num_train_epochs": ([0.5], [0.0]),
    "max_steps": ([-1, 1], [0, -2]),
    "warmup_steps": ([0], [-1]),
    "warmup_ratio": ([0.0, 1.0], [1.5, -0.1]),
    "logging_steps": ([1], [0]),
    "save_steps": ([0], [-1]),
    "save_total_limit": ([1], [0]),
    "skip_nonfinite_steps": ([0], [-1]),
    "mask_prob": ([1.0, 0.01], [0.0, 1.5]),
    "n_generator_steps": ([0], [-1]),
    "n_student_steps": ([1], [0]),
    "generator_learning_rate": ([1e-7], [0.0]),
    "generator_max_grad_norm": ([1.0], [0.0]),
    "gumbel_temperature": ([0.5], [0.0, -1.0]),
    "kd_temperature": ([2.0], [0.0]),
    "ce_weight": ([0.0], [-0.5]),
    "dataloader_num_workers": ([0], [-1]),
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_range_edges(name):
    accepted, refused = EDGES[name]
    for value in accepted:
        assert getattr(parse_args([*BASE, f"--{name}", str(value)]), name) == value
    for value in refused:
        with pytest.raises(ConfigError, match=rf"^--{name} \S+ is (out of range|not a finite number): it must be "):
            parse_args([*BASE, f"--{name}", str(value)])


def test_ranges_are_checked_for_evaluate_and_predict_too():
    with pytest.raises(ConfigError, match="--per_device_eval_batch_size 0 is out of range"):
        parse_args([*BASE, "--per_device_eval_batch_size", "0"], training=False)


def test_a_config_file_value_is_read_as_its_setting_s_type(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 2e-5\nnum_train_epochs: 30\nmax_steps: 100.0\nseed: '7'\nce_weight: null\n")
    args = parse_args(["--config", str(config), *BASE])
    assert (args.learning_rate, args.num_train_epochs, args.max_steps, args.seed, args.ce_weight) == \
        (2e-5, 30.0, 100, 7, None)
    assert isinstance(args.num_train_epochs, float) and isinstance(args.max_steps, int)


@pytest.mark.parametrize("text,message", [
    ("max_steps: 2.5", "key max_steps: 2.5 is not a whole number; write a whole number."),
    ("learning_rate: fast", "key learning_rate: 'fast' is not a number; write a number such as 2.0e-5."),
    ("learning_rate: true", "key learning_rate: True is not a number"),
    ("per_device_train_batch_size: [8, 16]", "key per_device_train_batch_size: [8, 16] is a list"),
    ("kd_temperature: {a: 1}", "key kd_temperature: {'a': 1} is a mapping"),
    ("max_seq_length:", "key max_seq_length has no value"),
    ("fp16: 1", "key fp16: 1 is not true or false."),
    ("text_column: 3", "key text_column: 3 is not text; put it in quotes."),
    ("divergence: js", "key divergence: 'js' is not one of soft_ce, kl, mse."),
    ("save_total_limit: 0", "key save_total_limit: 0 is out of range: it must be >= 1"),
    ("learning_rate: .inf", "key learning_rate: inf is not a finite number: it must be > 0."),
])
def test_a_config_file_value_of_the_wrong_type_or_range_names_file_and_key(tmp_path, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        parse_args(["--config", str(config), *BASE])
    assert str(info.value).startswith(f"Config file {config}, ") and message in str(info.value)


def test_the_flag_is_named_when_it_overrides_the_config_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("warmup_ratio: 0.1\nsave_total_limit: 3\n")
    for flags in (["--warmup_ratio", "2"], ["--warmup-ratio=2"]):
        with pytest.raises(ConfigError, match=r"^--warmup_ratio 2 is out of range"):
            parse_args(["--config", str(config), *BASE, *flags])


@pytest.mark.parametrize("content,message", [(None, "is a directory"), (b"lr: [\n", "is not valid YAML"),
                                             (b"learning_rate: 2.0e-5 # caf\xe9\n", "is not UTF-8")])
def test_a_config_file_that_cannot_be_read(tmp_path, content, message):
    config = tmp_path / "run.yaml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    with pytest.raises(ConfigError, match=f"Config file {config} {message}"):
        parse_args(["--config", str(config), *BASE])


def test_all_loss_weights_zero_is_refused():
    with pytest.raises(ConfigError, match=r"Every loss weight of --method finetune is 0 \(ce, kd, adv = 0, 0, 0\)"):
        parse_args([*BASE, "--method", "finetune", "--ce_weight", "0"])
    assert parse_args([*BASE, "--method", "kd", "--ce_weight", "0"]).weights() == (0.0, 0.5, 0.0)
