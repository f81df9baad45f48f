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
        "test": ["pytest>=7", "textbrewer>=0.2.1"],  # textbrewer: the peer toolkit of benchmarks/
        "bench": ["textbrewer>=0.2.1"],
        "plots": ["matplotlib"],
    },
    entry_points={"console_scripts": ["mate-kd=mate_kd.cli:main"]},
)
