/* placeholder */
#include "reason.h"
