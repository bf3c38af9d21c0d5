"""Import of resumes and job descriptions from files (PDF, DOCX, plain text / Markdown).

``docimport.extract`` sniffs the type by its bytes and pulls the text out in a separate process with
CPU, memory and wall-clock limits (``docimport.worker``); ``docimport.resume_rules`` turns a Chinese
resume's text into the API's resume fields without any model; ``docimport.resume_llm`` does the same
with the configured LLM (falling back to the rules); ``docimport.jd`` splits a job description.
Nothing here imports sanic or motor: the HTTP layer is ``api/resume_import.py``.
"""
