from braze_bridge.cli import main

main()
