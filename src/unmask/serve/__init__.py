"""``unmask serve``: a web page to try a trained model on an image, a video or a webcam still.

Why FastAPI + uvicorn and one small static page rather than Gradio: the limits this app must hold are
easiest to make strict where every route is ours. The upload is read as a counted stream and stopped at the
size limit (Gradio's upload route writes the file first); no route maps a URL to a server path (Gradio serves
files through its ``/file=`` route, guarded by allow/block lists); the queue, its cap and the deletion of each
upload after its analysis are a few lines we can test. The page is plain HTML with stable ids, so the browser
test reads the DOM it was written against. The cost is a page we write ourselves (``page/``, ~200 lines).

Layout: :mod:`.analysis` (a file -> the page's JSON and media, through :class:`unmask.predict.Predictor`),
:mod:`unmask.predict.render` (boxes, annotated video, timeline: shared with ``unmask predict``), :mod:`.jobs` (queue, limits, deletion), :mod:`.app` (routes), ``page/``
(HTML, JS, CSS), ``examples/`` (synthetic inputs made with ``unmask synth``; see its README).
"""

from unmask.serve.analysis import Limits

__all__ = ["Limits"]
