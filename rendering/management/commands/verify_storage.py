import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from rendering.integrity import verify_storage


class Command(BaseCommand):
    help = (
        "Check every stored file a row references (exists, sha256) and list orphan files; "
        "--repair re-queues broken renders, re-derives thumbnails, deletes rows whose pass must "
        "run again and orphans older than an hour. Exit status 1 while problems remain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--repair", action="store_true", help="fix what can be fixed")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["json"] or options["verbosity"] == 0
        with tqdm(total=100, unit="%", disable=quiet, file=self.stderr) as bar:

            def progress(fraction: float, message: str) -> None:
                bar.n = round(100 * fraction)
                bar.set_description(message[:60])
                bar.refresh()

            report = verify_storage(repair=options["repair"], progress=progress)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            for detail in report.details:
                row = f" ({detail['row']})" if detail["row"] else ""
                self.stdout.write(f"{detail['kind']}: {detail['name']}{row}: {detail['action']}")
            self.stdout.write(
                f"{report.checked} file references checked ({report.files} files): "
                f"{report.missing} missing, {report.corrupt} corrupt, {report.orphans} orphans; "
                f"{report.repaired} rows repaired, {report.orphans_removed} orphans removed"
            )
        if not report.ok:
            raise CommandError(
                f"{report.unresolved} problems remain"
                + ("" if options["repair"] else "; run with --repair to fix what can be fixed"),
                returncode=1,
            )
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS("storage consistent"))
