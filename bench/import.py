"""Import speed: ResNet-50 (random init) into a fresh test database, phase by phase, then one
row per registry model (units, seconds).

Baseline in the same run: the same ResNet-50 units written one `save()` at a time (the naive
loop), inside one transaction. Uses the configured database (SQLite by default, PostgreSQL with
DATABASE_URL) through a throwaway test database. Last line:
`summary units=<n> seconds=<s>` (ResNet-50's whole import: build, hash, measure layers, write).

    python bench/import.py [--model resnet50] [--zoo all|none|key,key,…]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope_site.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument(
        "--zoo", default="all", help="registry models to time one by one: all, none or keys"
    )
    args = parser.parse_args()

    import django

    django.setup()
    import torch
    from django.db import connection, transaction
    from django.test.utils import setup_test_environment

    from neurons.models import Unit
    from neurons.services import model_import
    from rendering.engine.zoo import ENTRIES, WeightsSpec

    torch.set_num_threads(os.cpu_count() or 1)
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        marks: list[tuple[str, float]] = []
        start = time.perf_counter()

        def progress(_fraction: float, message: str) -> None:
            marks.append((message, time.perf_counter() - start))

        model = model_import(
            registry_key=args.model, weights=WeightsSpec("random"), progress=progress
        )
        total = time.perf_counter() - start
        units = Unit.objects.filter(layer__model=model).count()
        for message, at in marks:
            print(f"  {at:7.2f} s  {message[:70]}")
        write_start = next(at for message, at in marks if message.endswith("writing"))
        ours_write = total - write_start

        layers = list(model.layers.order_by("order"))
        Unit.objects.filter(layer__model=model).delete()
        naive_start = time.perf_counter()
        with transaction.atomic():
            for layer in layers:
                for index in range(layer.num_units):
                    Unit(layer=layer, index=index).save()
        naive_write = time.perf_counter() - naive_start
        print(f"{'database':>10}: {connection.vendor}")
        print(
            f"{'write':>10}: ours (bulk) {ours_write:.2f} s, naive save() loop {naive_write:.2f} s,"
            f" ratio {naive_write / ours_write:.1f}x"
        )
        zoo = (
            []
            if args.zoo == "none"
            else sorted(ENTRIES)
            if args.zoo == "all"
            else args.zoo.split(",")
        )
        if zoo:
            print(f"{'model':>20} {'layers':>6} {'units':>7} {'seconds':>8}")
        for key in zoo:
            started = time.perf_counter()
            imported = model_import(registry_key=key, weights=WeightsSpec("random", seed=1))
            seconds = time.perf_counter() - started
            count = Unit.objects.filter(layer__model=imported).count()
            print(f"{key:>20} {imported.layers.count():>6} {count:>7} {seconds:>8.2f}")
        print(f"summary units={units} seconds={total:.2f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
