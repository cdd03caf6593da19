from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant import oidc
from assistant.models import SsoIdentity


class Command(BaseCommand):
    help = (
        "Link a provider's account (issuer and subject, the ID token's `iss` and `sub`) to an "
        "existing user, who then signs in with it whatever their username at the provider. "
        "Needed for accounts with a password or superuser status, which single sign-on never "
        "takes over by itself; a refused sign-in logs the exact command."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("issuer")
        parser.add_argument("subject")

    def handle(
        self, *args: object, username: str, issuer: str, subject: str, **options: object
    ) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        bound = SsoIdentity.objects.filter(issuer=issuer, subject=subject).first()
        if bound is not None:
            raise CommandError(f"{bound} is already linked to {bound.user.get_username()!r}.")
        oidc.link(user, issuer, subject, by="link_sso")
        self.stdout.write(f"linked {subject} at {issuer} to {username}")
