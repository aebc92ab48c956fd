/* placeholder */
#include "db.h"
