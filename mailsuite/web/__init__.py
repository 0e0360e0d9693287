"""The haslo web site: passwords, activation links, forgotten passwords and the account page.

It reaches accounts only through the directory and the one login path (`ctx.auth`), and sends
its e-mails through the SMTP package's `send_system_mail`; it never touches Maildirs.
"""
