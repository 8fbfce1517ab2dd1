from __future__ import annotations

from django import forms

from orgenv.models import Membership

ROLE_CHOICES = Membership.Role.choices


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="The username of the person to invite.")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Membership.Role.MEMBER)


class CreateAccountForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="The new account's username.")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
