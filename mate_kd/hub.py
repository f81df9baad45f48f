"""--push_to_hub: check before training that an upload can work, and upload best/ (with its model card) after.

A run of hours must not end in an upload that could never have worked, so `check_can_push` asks the Hub who the
token belongs to before anything loads: offline mode, no token, a read-only token, no network and an invalid
repository name are all refused up front.
"""

from __future__ import annotations

import os
from typing import Sequence, Union

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from .config import RunArgs
from .errors import ConfigError, MateKDError
from .model_card import write_model_card
from .tasks import TaskSpec


def check_can_push(args: RunArgs) -> str:
    """The repository id best/ will go to; ConfigError when an upload cannot work from here."""
    if constants.HF_HUB_OFFLINE:
        raise ConfigError("--push_to_hub needs the Hugging Face Hub, but HF_HUB_OFFLINE is set (offline mode): unset "
                          "it where there is network, or drop --push_to_hub (best/ is saved locally either way; "
                          "upload it later with `hf upload REPO OUTPUT_DIR/best`).")
    token = get_token()
    if token is None:
        raise ConfigError("--push_to_hub needs a Hugging Face token with write access: run `hf auth login` or set "
                          "HF_TOKEN, or drop --push_to_hub.")
    api = HfApi(token=token)
    try:
        who = api.whoami()
    except HfHubHTTPError as err:
        raise ConfigError(f"--push_to_hub: the Hub refused the token ({err}). Log in again with `hf auth login` or "
                          "set a valid HF_TOKEN.") from None
    except Exception as err:  # the transport's connection errors (httpx) share no base class with OSError
        raise ConfigError(f"--push_to_hub: cannot reach the Hugging Face Hub at {api.endpoint} "
                          f"({type(err).__name__}: {err}). Run where there is network, or drop --push_to_hub.") \
            from None
    role = who.get("auth", {}).get("accessToken", {}).get("role")
    if role == "read":
        raise ConfigError("--push_to_hub: the Hugging Face token is read-only; create one with write access "
                          "(https://huggingface.co/settings/tokens) and log in with it.")
    repo_id = args.hub_model_id or os.path.basename(os.path.normpath(args.output_dir))
    if "/" not in repo_id:
        repo_id = f"{who['name']}/{repo_id}"
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"--push_to_hub: {repo_id!r} is not a valid repository name ({err}); pass "
                          "--hub_model_id NAMESPACE/NAME.") from None
    return repo_id


def push_best(args: RunArgs, repo_id: str, task: TaskSpec, results: dict,
              command: Union[str, Sequence[str]]) -> str:
    """Upload OUTPUT_DIR/best to `repo_id` (created if needed, private with --hub_private_repo); its URL.

    `results` is what `loop.train` returns (eval_results.json); best/README.md is written from it when the run
    has not written one.
    """
    best = os.path.join(args.output_dir, "best")
    if not os.path.isfile(os.path.join(best, "README.md")):
        write_model_card(best, args, task, results["best"]["metrics"], command, step=results["best"].get("step"),
                         model_name=repo_id)
    api = HfApi()
    try:
        api.create_repo(repo_id, private=args.hub_private_repo, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=best,
                                   commit_message=f"mate-kd {args.method}: best-on-dev student")
    except Exception as err:  # after training: report, keep everything on disk
        raise MateKDError(f"Uploading {best} to {repo_id} failed ({type(err).__name__}: {err}). Training finished "
                          f"and {best} is saved; upload it later with `hf upload {repo_id} {best}`.") from None
    return commit.commit_url
