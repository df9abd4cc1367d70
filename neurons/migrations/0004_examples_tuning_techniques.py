from django.db import migrations

TECHNIQUES = [
    (
        "examples",
        "Dataset examples",
        "unit",
        "The dataset images that excite (and inhibit) a unit most, cropped to its receptive field.",
        {"k": 40},
    ),
    (
        "tuning",
        "Tuning curves",
        "layer",
        "Responses to synthetic curves, gratings and colours placed at the receptive field.",
        {},
    ),
]


def add_techniques(apps, schema_editor):
    Technique = apps.get_model("neurons", "Technique")
    for slug, name, level, description, params in TECHNIQUES:
        Technique.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "level": level,
                "description": description,
                "default_params": params,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("neurons", "0003_connections_technique")]
    operations = [migrations.RunPython(add_techniques, migrations.RunPython.noop)]
