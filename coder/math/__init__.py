"""Math answer checking: `check_answer(predicted, reference)`, `extract_answer(response)`, `AnswerPolicy`.

The public names are exported by `coder` (coder/__init__.py); this package stays empty so the checker
worker process (coder.math.worker) imports only the modules it uses.
"""
