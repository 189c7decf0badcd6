from hubmirror.entry import main

main()
