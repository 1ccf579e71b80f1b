"""``nuwa-hf push``: upload a model folder to a Hub repository (:func:`nuwa_hf.hub.push_model_folder`)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from .base import EXIT_HUB, EXIT_MODEL, EXIT_OK, CommandError, NuwaCommand


def add_hub_options(parser) -> None:
    """--private, --token and --endpoint (push and push-code)."""
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")


@contextmanager
def hub_failures(repo_id: str, *unreachable: type):
    """Around a Hub upload: a bad repo id is exit 2; offline mode, the Hub's refusals (HfHubHTTPError) and the
    ``unreachable`` errors are exit 5."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    try:
        yield
    except HFValidationError as error:
        raise CommandError(f"repo_id {repo_id!r}: {error}") from None
    except OfflineModeIsEnabled as error:
        raise CommandError(str(error), EXIT_HUB) from None
    except (HfHubHTTPError, *unreachable) as error:
        raise CommandError(f"The push to {repo_id} failed: {error}", EXIT_HUB) from None


class PushCommand(NuwaCommand):
    name = "push"
    help = "upload a model folder to a Hub repository"
    description = ("Upload a NUWA model folder (config, safetensors weights with the VQ-GANs, processor, README.md) "
                   "to a Hugging Face Hub model repository in one commit, creating the repository if needed. The "
                   "folder is checked first and the upload verified afterwards (nuwa_hf.hub.push_model_folder).")
    examples = ("examples:\n  nuwa-hf push checkpoints/nuwa-tiny my-org/nuwa-tiny\n"
                "  HF_ENDPOINT=http://127.0.0.1:8080 nuwa-hf push checkpoints/nuwa-tiny me/test --private")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("folder", help="the model folder")
        parser.add_argument("repo_id", help="the Hub repository, e.g. my-org/nuwa-tiny")
        add_hub_options(parser)
        parser.add_argument("--revision", default=None, help="branch to push to (default: main)")
        parser.add_argument("--commit-message", default="Upload NUWA model folder with nuwa-hf push", help="commit message")
        parser.add_argument("--delete-stale", action="store_true",
                            help="also delete files of the repository that are not in the folder (same commit)")
        parser.add_argument("--no-verify", action="store_true",
                            help="skip checking, after the upload, that every file arrived with its size and hash")
        parser.add_argument("--remote-code", default=None, metavar="CODE_REPO",
                            help="a code repository published with `nuwa-hf push-code`: the uploaded config.json and "
                                 "processor_config.json name its classes, so the model also loads with "
                                 "trust_remote_code=True where nuwa-hf is not installed (the folder is not changed)")

    def run(self) -> int:
        """Upload the folder (checked first, the upload verified) and print the commit."""
        import warnings

        from ..hub import HubPushVerificationError, HubUnreachableError, IncompleteModelFolderError, push_model_folder

        args = self.args
        folder = Path(args.folder)
        if not folder.is_dir():
            raise CommandError(f"{str(folder)!r} is not a folder: give the model folder to upload.")
        try:
            with hub_failures(args.repo_id, HubUnreachableError, HubPushVerificationError):
                with warnings.catch_warnings(record=True) as remarks:
                    warnings.simplefilter("always")
                    commit = push_model_folder(
                        folder, args.repo_id, token=args.token, private=args.private,
                        commit_message=args.commit_message, revision=args.revision, delete_stale=args.delete_stale,
                        verify=not args.no_verify, endpoint=args.endpoint, remote_code=args.remote_code,
                    )
                for remark in remarks:
                    print(f"warning: {remark.message}", file=sys.stderr)
        except IncompleteModelFolderError as error:
            raise CommandError(str(error), EXIT_MODEL) from None
        print(str(commit))
        return EXIT_OK
