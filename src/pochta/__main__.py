from pochta.admin.cli import main

main()
