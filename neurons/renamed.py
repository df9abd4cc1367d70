"""Old names keep working: a renamed model or layer answers 301 to the URL with the new name."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect

from microscope_site.errors import Moved


def moved_path(path: str, moved: Moved) -> str:
    """`path` with the segment that used the old name rewritten to the new one.

    Model slugs appear as `old` or `old@version`; layer names as `old` or, in the Circuits
    shorthand, `old:447`. Only the first matching segment changes.
    """
    segments = path.split("/")
    for position, segment in enumerate(segments):
        if moved.kind == "model" and (segment == moved.old or segment.startswith(f"{moved.old}@")):
            segments[position] = moved.new + segment[len(moved.old) :]
            break
        if moved.kind == "layer" and segment.partition(":")[0] in (moved.old, f"{moved.old}_0"):
            segments[position] = moved.new + segment[len(segment.partition(":")[0]) :]
            break
    return "/".join(segments)


class RenamedRedirect:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, Moved):
            return None
        target = moved_path(request.path, exception)
        if target == request.path:
            return None
        query = request.META.get("QUERY_STRING", "")
        return HttpResponsePermanentRedirect(f"{target}?{query}" if query else target)
