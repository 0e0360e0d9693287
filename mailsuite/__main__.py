from mailsuite.cli import main

main()
