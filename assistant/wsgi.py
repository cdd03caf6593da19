import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

application = get_wsgi_application()
