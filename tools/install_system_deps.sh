#!/usr/bin/env bash
# Debian packages that pip cannot provide: libusb (open3d imports it), Vulkan for open3d's
# offscreen rendering. Installed only when missing and when we may (root with apt-get);
# otherwise a warning: everything but open3d works without them.
set -u
need=()
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || need+=(libusb-1.0-0)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1 mesa-vulkan-drivers)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
    || echo "warning: could not install ${need[*]} (open3d visualisation will be unavailable)"
else
  echo "warning: missing system packages ${need[*]}; install them for open3d (apt-get install ${need[*]})"
fi
exit 0
