"""What the app makes and keeps: files with provenance, the stores, the audit log.

``saving`` is the one place a finished job is written (``save_image_result``,
``save_speech_result``, ``save_chat_result``); under it ``provenance`` (the record),
``provenance_png`` / ``provenance_wav`` / ``provenance_md`` (each format's writer and safe
reader), ``image_meta`` (image settings and "reproduce"), ``watermark``; beside it the
stores (``image_store``, ``clip_store``, ``chat_store``), ``trash`` (delete with Undo),
``folders`` (where the studios save) and ``audit`` (the hash-chained job log). Qt-free.
"""
