import pytest
from django.core.management import CommandError, call_command

from rendering.models import Render, RenderJob

pytestmark = pytest.mark.django_db


def test_render_command_renders_here_with_a_progress_bar(
    inceptionv1, small_renders, capsys
) -> None:
    call_command(
        "render", "inceptionv1", layers="mixed3a", units="0:3", steps=2, size=32, here=True
    )
    assert Render.objects.filter(layer__name="mixed3a").count() == 3
    assert RenderJob.objects.get().status == "succeeded"
    err = capsys.readouterr().err
    assert "3/3" in err  # tqdm's bar


def test_render_command_queues_by_default(inceptionv1, small_renders, capsys) -> None:
    call_command("render", "inceptionv1", layers="mixed3a,mixed3b", units="0:3", steps=2, size=32)
    assert RenderJob.objects.filter(status="queued").count() == 2
    assert "queued 2 render jobs" in capsys.readouterr().out


def test_render_command_names_unknown_layers(inceptionv1) -> None:
    with pytest.raises(CommandError, match=r"unknown layers \['mixed9z'\]"):
        call_command("render", "inceptionv1", layers="mixed9z")
