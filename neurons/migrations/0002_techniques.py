from django.db import migrations

TECHNIQUES = [
    ("channel", "Channel", "unit", "Feature visualization maximizing the mean of one channel."),
    ("neuron", "Neuron", "unit", "Feature visualization maximizing one unit at the centre position."),
    ("negative", "Negative", "unit", "Feature visualization minimizing one channel."),
    ("diversity", "Diversity", "unit", "Several images of one channel pushed apart from each other."),
    ("deepdream", "DeepDream", "layer", "Maximizing the squared activations of a whole layer."),
    ("caricature", "Caricature", "layer", "An image exaggerating what a layer sees in a given input."),
]


def add_techniques(apps, schema_editor):
    Technique = apps.get_model("neurons", "Technique")
    for slug, name, level, description in TECHNIQUES:
        Technique.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "level": level,
                "description": description,
                "default_params": {"size": 224, "steps": 512, "seed": 0},
            },
        )


class Migration(migrations.Migration):
    dependencies = [("neurons", "0001_initial")]
    operations = [migrations.RunPython(add_techniques, migrations.RunPython.noop)]
