"""``nuwa-hf push-code``: publish the installed package's remote code to a code repository
(:func:`nuwa_hf.hub.push_code`)."""

from __future__ import annotations

from .base import EXIT_OK, NuwaCommand
from .push import add_hub_options, hub_failures


class PushCodeCommand(NuwaCommand):
    name = "push-code"
    help = "publish this version's remote code to a code repository"
    description = ("Build the remote code of the installed nuwa-hf (its model, processor and pipeline modules, "
                   "imports rewritten for transformers' remote-code loader) and upload it to a Hub code repository, "
                   "in a folder named after the version (nuwa_hf.hub.push_code). Model repositories point at it with "
                   "`nuwa-hf push FOLDER REPO --remote-code CODE_REPO`.")
    examples = "examples:\n  nuwa-hf push-code my-org/nuwa-hf-code"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("repo_id", help="the code repository, e.g. my-org/nuwa-hf-code")
        add_hub_options(parser)

    def run(self) -> int:
        from ..hub import HubUnreachableError, push_code

        args = self.args
        with hub_failures(args.repo_id, HubUnreachableError):
            commit = push_code(args.repo_id, token=args.token, private=args.private, endpoint=args.endpoint)
        print(str(commit))
        return EXIT_OK
