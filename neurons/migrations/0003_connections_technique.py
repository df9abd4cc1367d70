from django.db import migrations


def add_technique(apps, schema_editor):
    Technique = apps.get_model("neurons", "Technique")
    Technique.objects.update_or_create(
        slug="connections",
        defaults={
            "name": "Connections",
            "level": "layer",
            "description": "Direct or expanded weights from the previous visualized layer.",
            "default_params": {"top": 50},
        },
    )


class Migration(migrations.Migration):
    dependencies = [("neurons", "0002_techniques")]
    operations = [migrations.RunPython(add_technique, migrations.RunPython.noop)]
